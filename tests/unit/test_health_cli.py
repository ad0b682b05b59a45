"""`cloud-factory health` (a container's healthcheck) reads the heartbeats: exit 0 only for a live,
healthy worker; every other case is exit 1 with the reason in one line."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloud_factory.cli import app
from core.settings import get_settings


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CF_STATE_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _beat(
    state: Path,
    *,
    pid: int | None = None,
    kinds=("saga",),
    age_s: float = 1.0,
    healthy: bool = True,
    parked: int = 0,
    stuck: list | None = None,
) -> None:
    pid = os.getpid() if pid is None else pid
    (state / "workers").mkdir(exist_ok=True)
    (state / "workers" / f"{pid}.json").write_text(
        json.dumps(
            {
                "pid": pid,
                "kinds": list(kinds),
                "beatAt": time.time() - age_s,
                "healthy": healthy,
                "parked": parked,
                "stuck": stuck or [],
            }
        )
    )


def _health(*args: str):
    return CliRunner().invoke(app, ["health", *args])


def test_no_heartbeat_is_unhealthy(state: Path) -> None:
    result = _health()
    assert result.exit_code == 1 and "no worker has written a heartbeat" in result.output


def test_a_fresh_beat_of_a_live_process_is_healthy(state: Path) -> None:
    _beat(state, kinds=("api",))
    result = _health()
    assert result.exit_code == 0 and result.output.startswith(f"healthy: pid {os.getpid()} (api)")
    assert _health("--kind", "dlq").exit_code == 1


@pytest.mark.parametrize(
    ("beat", "reason"),
    [
        ({"healthy": False}, "a worker thread died"),
        ({"age_s": 60.0}, "or the process is gone"),
        ({"pid": 2**22 + 17}, "no worker has written a heartbeat"),  # gone from this host: file removed
        ({"stuck": [{"topic": "t", "partition": 0, "offset": 5, "since": time.time() - 90}]}, "stuck on"),
    ],
)
def test_a_sick_worker_is_unhealthy_and_says_why(state: Path, beat: dict, reason: str) -> None:
    _beat(state, **beat)
    result = _health()
    assert result.exit_code == 1 and reason in result.output


def test_parked_records_alone_do_not_fail_the_check(state: Path) -> None:
    _beat(state, parked=3)
    result = _health()
    assert result.exit_code == 0 and "3 parked" in result.output
