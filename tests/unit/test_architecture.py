"""The house rules, checked on every run: imports point down the layers of pyproject.toml's
import contract (core ← schemas ← messaging ← workflows ← services ← activities | bridges | edge ←
workers ← cloud_factory), and the whole tree passes the linter (`ruff check`, pyproject.toml's
`[tool.ruff]`), so an upward import or a lint finding fails the suite, not a review."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ["cloud_factory", "workers", "activities | bridges | edge", "services", "workflows", "messaging",
          "schemas", "core"]


def test_the_layers_contract_is_the_documented_one() -> None:
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    config = tool["importlinter"]
    (contract,) = config["contracts"]
    assert contract["type"] == "layers" and contract["layers"] == LAYERS
    installed = {pattern.rstrip("*") for pattern in tool["setuptools"]["packages"]["find"]["include"]}
    assert set(config["root_packages"]) == installed, "every installed package is in the contract"


def test_imports_only_point_downward() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_the_tree_passes_the_linter() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run([str(ruff), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
