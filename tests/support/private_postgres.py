"""A PostgreSQL server of one test's own, to kill and restart: the shared one is never touched.

It runs the stack's own binaries (Debian's `postgresql`) on a cluster under `tmp_path` (or beside
it under /var/tmp when the server's user cannot reach it, as `PostgresComponent` arranges) and a
free port. `crash_server` SIGKILLs the postmaster's whole process group, as a crash would (nothing
is flushed or shut down), and `start_server` brings it back on the same data directory: it
recovers from its write-ahead log.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_factory.stack._process import pid_alive
from cloud_factory.stack.ports import free_port
from cloud_factory.stack.postgres import PostgresComponent
from core.settings import Settings

__all__ = ["crash_server", "private_postgres", "start_server"]


def start_server(postgres: PostgresComponent, timeout: float = 60) -> None:
    """Start the cluster (pg_ctl waits for it) and wait until it answers a query."""
    postgres.launch()
    deadline = time.monotonic() + timeout
    while not postgres.probe():
        assert time.monotonic() < deadline, f"private PostgreSQL not up; see {postgres.server_log}"
        time.sleep(0.2)


def crash_server(postgres: PostgresComponent) -> None:
    """SIGKILL the postmaster and every backend (pg_ctl starts the postmaster in its own session)."""
    pid = postgres.pid()
    assert pid is not None, "the private PostgreSQL is not running"
    assert os.getpgid(pid) == pid, "the postmaster does not lead its process group"
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid) or postgres.probe():
        assert time.monotonic() < deadline, f"the private PostgreSQL (pid {pid}) outlived SIGKILL"
        time.sleep(0.1)


@pytest.fixture
def private_postgres(stack, settings: Settings,
                     tmp_path: Path) -> Iterator[tuple[Settings, PostgresComponent]]:
    """(the session's settings but for PostgreSQL's port, the server); only the cluster lives apart,
    so keys, heartbeats and spool are the session's."""
    own = settings.model_copy(update={"pg_port": free_port()})
    postgres = PostgresComponent(own.model_copy(update={"state_dir": tmp_path / "state"}))
    postgres.prepare()
    start_server(postgres)
    postgres.after_ready()
    try:
        yield own, postgres
    finally:
        if postgres.pid() is not None:
            postgres.stop()
        shutil.rmtree(postgres.cluster_dir, ignore_errors=True)
