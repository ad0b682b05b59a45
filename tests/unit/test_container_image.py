"""The container image offline: its locked install, its build context, its user and what it copies.

The Dockerfile is read by tests/support/container_model.py; the image's processes are started for real
(as its unprivileged user) by tests/integration/test_container_run.py.
"""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.support.container_model import ROOT, Dockerfile, build_context


@pytest.fixture(scope="module")
def image() -> Dockerfile:
    return Dockerfile.read()


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    from packaging.requirements import Requirement

    lock = (ROOT / "requirements.lock").read_text()
    pinned: dict[str, str] = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 1)[1]):
        head = entry.split(" \\", 1)[0].split(";")[0].strip()
        if not head or head.startswith("#"):
            continue
        name, _, version = head.partition("==")
        assert version, f"{head} is not pinned to one version"
        assert "--hash=sha256:" in entry, f"{head} has no hash"
        pinned[name.lower().replace("_", "-")] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["otlp"],
        *project["build-system"]["requires"],
    ]
    for line in wanted:
        requirement = Requirement(line)
        name = requirement.name.lower().replace("_", "-")
        assert name in pinned, f"{name} (pyproject.toml) is not in requirements.lock: run scripts/lock.sh"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{name}=={pinned[name]} in requirements.lock does not satisfy {line}: run scripts/lock.sh"
        )


def test_the_image_installs_the_lock_and_runs_unprivileged(image: Dockerfile) -> None:
    assert "pip install --require-hashes --no-deps -r requirements.lock" in image.runs
    assert any(
        run.startswith("pip install --no-deps --no-build-isolation --no-index .") for run in image.runs
    )
    assert image.uid == 10001 and image.entrypoint == ["cloud-factory"]
    assert any(
        f"install -d -o {image.uid} -g {image.uid}" in run and image.env["CF_STATE_DIR"] in run
        for run in image.runs
    ), "the state directory must belong to the image's user"


def test_dockerfile_copies_every_package(image: Dockerfile) -> None:
    packages = [p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file() and p.name != "tests"]
    copied = {source for source, _ in image.copies}
    assert set(packages) <= copied


def test_the_build_context_holds_what_the_image_copies_and_nothing_private(image: Dockerfile) -> None:
    context = build_context()
    for source, _ in image.copies:
        assert source in context or any(path.startswith(source + "/") for path in context), (
            f"COPY {source}: .dockerignore keeps it out of the build context"
        )
    top = {path.split("/")[0] for path in context}
    assert top == {source for source, _ in image.copies}, f"unexpected in the build context: {top}"
    assert not [p for p in context if "__pycache__" in p or p.endswith("signing-keys") or "/.env" in p]


def test_the_dockerignore_check_sees_a_leak(tmp_path) -> None:
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "big.so").write_text("x")
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "settings.py").write_text("x")
    (tmp_path / "core" / "signing-keys").write_text("secret")
    (tmp_path / ".dockerignore").write_text("*\n!core/\n**/signing-keys\n")
    assert build_context(tmp_path) == {"core/settings.py"}
    (tmp_path / ".dockerignore").write_text("**/__pycache__\n")
    assert ".venv/lib/big.so" in build_context(tmp_path)
