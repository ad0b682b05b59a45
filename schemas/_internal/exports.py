"""The committed schema files under `schemas/generated/`: render in memory, write, or diff.

Rendering is deterministic (fixed example metadata, declaration order, stable JSON formatting) so a
test can regenerate everything in memory and require the committed files to be identical.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas._internal.asyncapi import RuntimeFacts, asyncapi_document
from schemas._internal.catalog import Catalog
from schemas._internal.jsonschema import catalog_metadata, event_schema

__all__ = ["GENERATED_DIR", "render_files", "stale_files", "write_files"]

GENERATED_DIR = Path(__file__).resolve().parent.parent / "generated"


def dump(document: Any) -> str:
    """Stable, diff-friendly JSON text."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_files(catalog: Catalog, facts: RuntimeFacts) -> dict[str, str]:
    """Relative path → file content for every generated file (`facts`: `cloud_factory.exports`)."""
    files: dict[str, str] = {}
    index = []
    for entry in catalog.values():
        for version in entry.versions:
            files[f"jsonschema/{entry.event_type}/{version}.json"] = dump(event_schema(entry, version))
        index.append(
            {
                **catalog_metadata(entry, entry.latest_version),
                "versions": list(entry.versions),
                "summary": entry.summary,
            }
        )
    files["catalog.json"] = dump({"eventTypes": index})
    files["asyncapi.json"] = dump(asyncapi_document(catalog, facts))
    return files


def write_files(catalog: Catalog, facts: RuntimeFacts, root: Path = GENERATED_DIR) -> list[str]:
    """(Re)write the generated files under `root`, deleting ones no longer produced; returns changed paths."""
    wanted = render_files(catalog, facts)
    changed = stale_files(catalog, facts, root, rendered=wanted)
    for relative, content in wanted.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
    for path in _existing(root):
        if path.relative_to(root).as_posix() not in wanted:
            path.unlink()
    for directory in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()
    return changed


def stale_files(
    catalog: Catalog, facts: RuntimeFacts, root: Path = GENERATED_DIR, *,
    rendered: dict[str, str] | None = None,
) -> list[str]:
    """Paths that are missing, different, or no longer generated (empty list = up to date)."""
    wanted = rendered if rendered is not None else render_files(catalog, facts)
    stale = []
    for relative, content in wanted.items():
        path = root / relative
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            stale.append(relative)
    stale.extend(
        p.relative_to(root).as_posix()
        for p in _existing(root)
        if p.relative_to(root).as_posix() not in wanted
    )
    return sorted(stale)


def _existing(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.json") if p.is_file()] if root.is_dir() else []
