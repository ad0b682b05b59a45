"""The `cloud-factory` console script.

Plain (non-Rich) usage errors and help: a mistake on the command line is click's one `Error:` line,
and `--help` does not pay for Rich's formatter. Set before Typer is first imported, which is why
this entry point sits outside `cloud_factory.cli`.
"""

from __future__ import annotations

import os

__all__ = ["main"]


def main() -> None:
    os.environ.setdefault("TYPER_USE_RICH", "0")
    from cloud_factory.cli import app
    from cloud_factory.cli.errors import run

    run(app)
