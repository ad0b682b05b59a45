"""The sandbox imports a workflow's module afresh at every run: with bytecode writing off
(PYTHONDONTWRITEBYTECODE=1) that compiled the saga module's source each time, unless the worker
wrote its bytecode once at start."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import sys
from pathlib import Path

import pytest

from workers.bytecode import ensure_bytecode
from workflows.registry import SAGA_WORKFLOWS


class _Compiled(Exception):
    """Raised by the loader's compile step: the source was compiled instead of read from the cache."""


def _load_as_the_sandbox_does(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the sandbox's fresh import of the module runs: the standard loader's `get_code`."""
    loader = importlib.machinery.SourceFileLoader(path.stem, str(path))

    def compiled(*_args: object, **_kwargs: object) -> None:
        raise _Compiled(str(path))

    monkeypatch.setattr(loader, "source_to_code", compiled)
    loader.get_code(path.stem)


def _module(tmp_path: Path) -> type:
    source = tmp_path / "a_workflow_module.py"
    source.write_text("class AWorkflow:\n    pass\n")
    spec = importlib.util.spec_from_file_location("a_workflow_module", source)
    module = importlib.util.module_from_spec(spec)
    sys.modules["a_workflow_module"] = module
    spec.loader.exec_module(module)
    return module.AWorkflow


@pytest.fixture
def no_bytecode_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)


def test_without_the_cache_every_import_compiles_the_source(
    tmp_path, monkeypatch, no_bytecode_writes
) -> None:
    cls = _module(tmp_path)
    with pytest.raises(_Compiled):  # the control: what each saga run paid before
        _load_as_the_sandbox_does(Path(sys.modules[cls.__module__].__file__), monkeypatch)


def test_once_written_the_import_reads_the_cache(tmp_path, monkeypatch, no_bytecode_writes) -> None:
    cls = _module(tmp_path)
    written = ensure_bytecode([cls])
    assert written == [Path(importlib.util.cache_from_source(str(tmp_path / "a_workflow_module.py")))]
    _load_as_the_sandbox_does(tmp_path / "a_workflow_module.py", monkeypatch)


def test_a_current_cache_is_left_alone_and_a_stale_one_replaced(tmp_path, no_bytecode_writes) -> None:
    cls = _module(tmp_path)
    assert len(ensure_bytecode([cls])) == 1
    assert ensure_bytecode([cls]) == []  # a replica starting next, or an installer's file
    source = tmp_path / "a_workflow_module.py"
    source.write_text("class AWorkflow:\n    changed = True\n")
    assert len(ensure_bytecode([cls])) == 1


def test_an_installers_hash_checked_cache_is_kept_while_current_and_replaced_when_stale(
        tmp_path, monkeypatch, no_bytecode_writes) -> None:
    """A checked hash-based file (`py_compile --invalidation-mode checked-hash`) is current while the
    source's hash matches; once the source changes the loader would compile it, so it is rewritten."""
    import py_compile
    cls = _module(tmp_path)
    source = tmp_path / "a_workflow_module.py"
    cached = importlib.util.cache_from_source(str(source))
    py_compile.compile(str(source), cfile=cached, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    assert ensure_bytecode([cls]) == []
    source.write_text("class AWorkflow:\n    changed = True\n")
    assert ensure_bytecode([cls]) == [Path(cached)]
    _load_as_the_sandbox_does(source, monkeypatch)


def test_the_saga_modules_are_read_from_the_cache_after_it(monkeypatch, no_bytecode_writes) -> None:
    sources = {Path(sys.modules[cls.__module__].__file__) for cls in SAGA_WORKFLOWS}
    assert len(sources) == 2
    ensure_bytecode(SAGA_WORKFLOWS)
    for source in sources:
        _load_as_the_sandbox_does(source, monkeypatch)


def test_a_cache_that_cannot_be_written_is_one_line_not_an_error(tmp_path, caplog) -> None:
    cls = _module(tmp_path)
    (tmp_path / "__pycache__").write_text("a file where the cache directory would go")
    with caplog.at_level(logging.INFO, logger="cloud_factory.worker"):
        assert ensure_bytecode([cls]) == []
    assert [r.getMessage() for r in caplog.records if "not cached" in r.getMessage()]
