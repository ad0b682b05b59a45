"""The generated AsyncAPI document passes the official parser (`@asyncapi/parser`, run by Node from
tests/tools/asyncapi, installed by scripts/setup.sh) with no diagnostic at all, and the parser rejects
a copy with a dangling channel or a mistyped binding, so a clean run means something."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from schemas._internal.exports import GENERATED_DIR

TOOL = Path(__file__).resolve().parents[1] / "tools" / "asyncapi"


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node not found: the AsyncAPI validator needs Node.js 20+ (scripts/setup.sh)"
    assert (TOOL / "node_modules" / "@asyncapi" / "parser").is_dir(), \
        f"@asyncapi/parser is not installed in {TOOL}: run scripts/setup.sh (npm ci there)"
    return subprocess.run([node, str(TOOL / "validate.mjs"), str(path)], capture_output=True, text=True,
                          timeout=120, check=False)


def test_generated_document_has_no_errors_or_warnings() -> None:
    result = _validate(GENERATED_DIR / "asyncapi.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == "errors=0 warnings=0 infos=0 hints=0"


def _broken_dangling_channel(document: dict[str, Any]) -> None:
    document["operations"]["dlq-processor.receive.order.created.dlq"]["channel"] = {"$ref": "#/channels/nope"}


def _broken_binding(document: dict[str, Any]) -> None:
    document["channels"]["order.created"]["bindings"]["kafka"]["partitions"] = "three"


@pytest.mark.parametrize("breaks", [_broken_dangling_channel, _broken_binding])
def test_a_broken_copy_is_rejected(tmp_path: Path, breaks: Any) -> None:
    document = json.loads((GENERATED_DIR / "asyncapi.json").read_text(encoding="utf-8"))
    breaks(document)
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    result = _validate(path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "errors=0" not in result.stdout
