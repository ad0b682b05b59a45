"""`stack status` forgets a worker whose process is gone from this host (its file is removed), while a
live but silent worker stays listed as stale and one from another host is judged by its beat only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from cloud_factory.stack.workers import worker_health
from workers.heartbeat import HOST, STALE_AFTER_S, Heartbeat


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _write(state_dir: Path, pid: int, *, beat_at: float, host: str | None = HOST) -> Path:
    path = state_dir / "workers" / f"{pid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = {"pid": pid, "kinds": ["billing"], "beatAt": beat_at, "healthy": True}
    if host is not None:
        raw["host"] = host
    path.write_text(json.dumps(raw))
    return path


def test_a_dead_workers_heartbeat_is_forgotten_and_a_silent_live_one_is_stale(tmp_path: Path) -> None:
    dead = _write(tmp_path, _dead_pid(), beat_at=time.time())  # killed right after its last beat
    older = _write(tmp_path, _dead_pid(), beat_at=time.time() - 60, host=None)  # an older release's file
    silent = _write(tmp_path, os.getpid(), beat_at=time.time() - STALE_AFTER_S - 5)  # alive, not beating
    rows = worker_health(tmp_path)
    assert [(row.pid, row.state) for row in rows] == [(os.getpid(), "stale")]
    assert not dead.exists() and not older.exists() and silent.exists()


def test_a_beat_from_another_host_is_kept_while_recent(tmp_path: Path) -> None:
    pid = _dead_pid()  # means nothing on the other host
    _write(tmp_path, pid, beat_at=time.time(), host=f"not-{HOST}")
    assert [(row.pid, row.state) for row in worker_health(tmp_path)] == [(pid, "healthy")]
    _write(tmp_path, pid, beat_at=time.time() - 60, host=f"not-{HOST}")
    assert [(row.pid, row.state) for row in worker_health(tmp_path)] == [(pid, "stale")]
    _write(tmp_path, pid, beat_at=time.time() - 400, host=f"not-{HOST}")
    assert worker_health(tmp_path) == []


def test_a_running_worker_writes_its_host(tmp_path: Path) -> None:
    Heartbeat(tmp_path, ["saga"]).beat(True)
    raw = json.loads((tmp_path / "workers" / f"{os.getpid()}.json").read_text())
    assert raw["host"] == HOST
    [row] = worker_health(tmp_path)
    assert row.state == "healthy"
