"""The soak benchmark's worker processes (`cloud-factory worker KIND`, as deployed) and their memory.

Every process is isolated by the run's tag like the test suite's worker processes: its own task
queue, consumer groups and tenant prefix, so a stack shared with other runs is not disturbed.
`RssSampler` reads each process's VmRSS from /proc every few seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import Settings
from workers.heartbeat import read_heartbeats
from workers.kinds import EVERY_KIND

__all__ = ["RssSampler", "WorkerProcess", "kinds_for", "start_workers", "stop_workers"]

CLI = str(Path(sys.executable).parent / "cloud-factory")


@dataclass
class WorkerProcess:
    kind: str
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid


def kinds_for(layout: str) -> list[str]:
    """`all`: one `worker all` process; `separate`: one process per kind, the saga first."""
    if layout == "all":
        return ["all"]
    return sorted((str(kind) for kind in EVERY_KIND), key=lambda k: (k != "saga", k != "bridge", k))


def start_workers(settings: Settings, kinds: list[str], env: dict[str, str], log_dir: Path,
                  timeout_s: float = 120) -> list[WorkerProcess]:
    """Start one process per kind (stderr to `log_dir/<kind>.log`) and wait for all their heartbeats."""
    log_dir.mkdir(parents=True, exist_ok=True)
    started = []
    for kind in kinds:
        with open(log_dir / f"{kind}.log", "ab") as log:
            started.append(WorkerProcess(kind, subprocess.Popen(
                [CLI, "worker", kind], env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=log)))
    deadline = time.monotonic() + timeout_s
    while {w.pid for w in started} - {beat.pid for beat in read_heartbeats(settings.state_dir)}:
        dead = [w.kind for w in started if w.process.poll() is not None]
        if dead or time.monotonic() > deadline:
            stop_workers(started)
            what = f"exited on start ({', '.join(dead)})" if dead else f"not healthy after {timeout_s:.0f} s"
            raise SystemExit(f"error: worker process(es) {what}; see {log_dir}")
        time.sleep(0.3)
    return started


def stop_workers(workers: list[WorkerProcess], timeout_s: float = 60) -> None:
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(10)


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass
class RssSampler:
    """VmRSS (MB) of each named pid every `every_s` seconds, on a daemon thread."""

    pids: dict[str, int]
    every_s: float = 3.0
    t0: float = field(default_factory=time.monotonic)
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        values = {name: rss for name, pid in self.pids.items() if (rss := _rss_mb(pid)) is not None}
        self.samples.append((time.monotonic() - self.t0, values))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every_s)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._sample()

    def latest(self) -> dict[str, float]:
        return self.samples[-1][1] if self.samples else {}

    def summary(self) -> dict[str, dict[str, float]]:
        """start / peak / end MB per process (over the samples that saw it alive)."""
        out: dict[str, dict[str, float]] = {}
        for name in self.pids:
            seen = [values[name] for _t, values in self.samples if name in values]
            if seen:
                out[name] = {"start": seen[0], "peak": max(seen), "end": seen[-1]}
        return out
