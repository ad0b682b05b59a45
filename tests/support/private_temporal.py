"""A Temporal dev server of one test's own, to kill and restart: the shared server is never touched.

It has its own state directory (so its own SQLite file) and free ports, and reuses the `temporal`
binary the stack runs. `kill_server` ends it with SIGKILL, as a crash would; `start_server` brings
it back on the same SQLite file.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_factory.stack._process import pid_alive
from cloud_factory.stack.ports import free_port
from cloud_factory.stack.temporal import TemporalComponent
from core.settings import Settings
from tests.support.servers import launch_and_wait

__all__ = ["kill_server", "private_temporal", "start_server"]


def start_server(temporal: TemporalComponent, timeout: float = 60) -> None:
    """Launch (or relaunch) the server and wait until its gRPC health check answers."""
    launch_and_wait(temporal, timeout=timeout, what="private Temporal server")


def kill_server(temporal: TemporalComponent) -> None:
    """SIGKILL the server's process group (no shutdown of any kind) and wait until it is gone."""
    pid = temporal.pid()
    assert pid is not None, "the private Temporal server is not running"
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"the private Temporal server (pid {pid}) outlived SIGKILL"
        time.sleep(0.1)


@pytest.fixture
def private_temporal(stack, settings: Settings,
                     tmp_path: Path) -> Iterator[tuple[Settings, TemporalComponent]]:
    """(the session's settings but for Temporal's ports, the server); only the server's own files
    live under `tmp_path`, so keys, heartbeats and spool are the session's."""
    own = settings.model_copy(update={"temporal_port": free_port(), "temporal_ui_port": free_port()})
    temporal = TemporalComponent(own.model_copy(update={"state_dir": tmp_path / "state"}))
    temporal.prepare()
    start_server(temporal)
    try:
        yield own, temporal
    finally:
        temporal.stop()
