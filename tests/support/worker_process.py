"""A real `cloud-factory worker all` subprocess, isolated by tag (task queue, groups, tenant prefix)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.settings import Settings
from workers.heartbeat import read_heartbeats

__all__ = ["CLI", "isolation_env", "start_workers", "stop_workers"]

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
    """Start the workers and wait for their heartbeat; `log` collects their stderr (appended)."""
    if log is None:
        process = subprocess.Popen(
            [CLI, "worker", kind], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    else:
        with open(log, "ab") as stderr:
            process = subprocess.Popen(
                [CLI, "worker", kind], env=env, stdout=subprocess.DEVNULL, stderr=stderr
            )
    deadline = time.monotonic() + 60
    while not any(beat.pid == process.pid for beat in read_heartbeats(settings.state_dir)):
        assert process.poll() is None, "the worker process died on start"
        assert time.monotonic() < deadline, "the worker process never reported healthy"
        time.sleep(0.2)
    return process


def stop_workers(*processes: subprocess.Popen | None) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
