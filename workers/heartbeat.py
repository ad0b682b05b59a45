"""Worker heartbeats: one small JSON file per running worker process, refreshed every few seconds.

`cloud-factory stack status` reads them (`read_heartbeats`): a file whose process is gone or whose
beat is older than `STALE_AFTER_S` is reported as not healthy.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["STALE_AFTER_S", "Heartbeat", "WorkerBeat", "read_heartbeats"]

INTERVAL_S = 5.0
STALE_AFTER_S = 20.0


@dataclass(frozen=True)
class WorkerBeat:
    pid: int
    kinds: list[str]
    beat_at: float
    healthy: bool

    @property
    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        return time.time() - self.beat_at < STALE_AFTER_S


class Heartbeat:
    def __init__(self, state_dir: Path, kinds: list[str]) -> None:
        self.path = Path(state_dir) / "workers" / f"{os.getpid()}.json"
        self.kinds = kinds

    def beat(self, healthy: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"pid": os.getpid(), "kinds": self.kinds, "beatAt": time.time(), "healthy": healthy})
        )
        tmp.replace(self.path)

    async def run(self, stop: asyncio.Event, alive: Callable[[], bool]) -> None:
        while not stop.is_set():
            self.beat(alive())
            try:
                await asyncio.wait_for(stop.wait(), INTERVAL_S)
            except TimeoutError:
                pass

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def read_heartbeats(state_dir: Path, *, forget_dead_after_s: float = 300.0) -> list[WorkerBeat]:
    """Every worker's last beat; files of processes gone for `forget_dead_after_s` are removed."""
    beats = []
    for path in sorted((Path(state_dir) / "workers").glob("*.json")):
        try:
            raw = json.loads(path.read_text())
            beat = WorkerBeat(int(raw["pid"]), list(raw["kinds"]), float(raw["beatAt"]), bool(raw["healthy"]))
        except (OSError, ValueError, KeyError):
            continue
        if not beat.alive and time.time() - beat.beat_at > forget_dead_after_s:
            path.unlink(missing_ok=True)  # a worker killed hard never cleared its file
            continue
        beats.append(beat)
    return beats
