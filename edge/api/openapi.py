"""The committed OpenAPI document of the order API (`edge/api/openapi.json`), rendered from the app.

`python -m edge.api.openapi --write` refreshes it; `--check` exits 1 when it is stale (a unit test
does the same).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from edge.api.app import ApiConfig, create_app

__all__ = ["OPENAPI_FILE", "openapi_document", "render"]

OPENAPI_FILE = Path(__file__).resolve().parent / "openapi.json"


def openapi_document() -> dict[str, Any]:
    """The document the running API serves at `/openapi.json` (no server or database needed)."""
    asgi = create_app(ApiConfig(engine=None))
    while not hasattr(asgi, "openapi"):  # unwrap the tracing and size-limit middleware
        asgi = asgi.app
    return asgi.openapi()


def render() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--write" in argv:
        OPENAPI_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {OPENAPI_FILE}")
        return 0
    current = OPENAPI_FILE.read_text(encoding="utf-8") if OPENAPI_FILE.exists() else ""
    if current != text:
        print(f"{OPENAPI_FILE} is out of date: run `python -m edge.api.openapi --write`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
