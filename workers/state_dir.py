"""A worker's state directory must be writable before anything starts.

Heartbeats and the fallback spool live there. A process that cannot write it would start its
threads, lose each one to a `PermissionError` traceback and linger half-alive; in a container that is
the image's user facing a directory it does not own. So the worker commands check first and stop with
one line that names the directory, the user and the setting to change.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["require_writable"]


def require_writable(*directories: Path) -> None:
    """Create each directory if needed and prove a file can be written in it; PermissionError if not."""
    for directory in directories:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-check-"):
                pass
        except OSError as exc:
            raise PermissionError(
                f"the state directory {directory} is not writable by uid {os.getuid()} "
                f"({exc.strerror or exc}): set CF_STATE_DIR (or CF_FALLBACK_DIR) to a directory this "
                "user owns — in docker-compose.yml, the service's volume"
            ) from None
