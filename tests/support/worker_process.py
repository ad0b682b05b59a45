"""A real `cloud-factory worker all` subprocess, isolated by tag (task queue, groups, tenant prefix)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.settings import Settings
from workers.heartbeat import read_heartbeats

__all__ = ["CLI", "isolation_env", "launch_workers", "log_count", "log_problems", "start_workers",
           "stop_workers", "wait_healthy"]

CLI = str(Path(sys.executable).parent / "cloud-factory")


def isolation_env(tag: str, prefix: str) -> dict[str, str]:
    return {
        **os.environ,
        "CF_ORDER_TASK_QUEUE": f"proc-{tag}",
        "CF_WORKER_GROUP_SUFFIX": f"-proc-{tag}",
        "CF_WORKER_TENANT_PREFIX": prefix,
        "CF_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "CF_IDEMPOTENCY_LEASE_S": "12",
    }


def start_workers(settings: Settings, env: dict[str, str], kind: str = "all", *,
                  log: Path | None = None) -> subprocess.Popen:
    """Start `cloud-factory worker KIND` and wait for its heartbeat (see `launch_workers`)."""
    process = launch_workers(env, kind, log=log)
    wait_healthy(settings, process)
    return process


def launch_workers(env: dict[str, str], kind: str = "all", *, log: Path | None = None) -> subprocess.Popen:
    """Start `cloud-factory worker KIND` without waiting; its stderr (the JSON log) goes to `log` when
    given, else nowhere."""
    if log is None:
        return subprocess.Popen([CLI, "worker", kind], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    with log.open("ab") as sink:
        return subprocess.Popen([CLI, "worker", kind], env=env, stdout=subprocess.DEVNULL, stderr=sink)


def wait_healthy(settings: Settings, process: subprocess.Popen) -> None:
    """Until `process` wrote its heartbeat (AssertionError when it died or took over 60 s)."""
    deadline = time.monotonic() + 60
    while not any(beat.pid == process.pid for beat in read_heartbeats(settings.state_dir)):
        assert process.poll() is None, "the worker process died on start"
        assert time.monotonic() < deadline, "the worker process never reported healthy"
        time.sleep(0.2)


def stop_workers(*processes: subprocess.Popen | None) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


def log_problems(log: Path) -> list[str]:
    """The lines of a worker's JSON log at error level or above, and any traceback."""
    problems = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            if "Traceback" in line:
                problems.append(line)
            continue
        if record.get("level") in ("error", "critical") or "Traceback" in line:
            problems.append(line[:400])
    return problems


def log_count(log: Path, text: str) -> int:
    return sum(text in line for line in log.read_text(errors="replace").splitlines())
