"""The `cloud-factory` console script.

Plain (non-Rich) help: `--help` does not pay for Rich's formatter (a mistake on the command line is
one `error:` line, see `cloud_factory.cli.errors.run`). Set before Typer is first imported, which is why
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
