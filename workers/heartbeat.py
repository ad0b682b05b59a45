"""Worker heartbeats: one small JSON file per running worker process, refreshed every few seconds.

Each beat says whether every worker thread is alive and carries its consumers' health: how many
records they parked and which partitions are stuck on one offset (`messaging.consumer.health`).
`cloud-factory stack status` reads them (`read_heartbeats`): a beat older than `STALE_AFTER_S` is
reported as not healthy (stale); a file whose process is gone — written on this host (the beat names
its host) and its pid no longer alive, e.g. a worker killed with SIGKILL that never cleared it — is
removed when read, so a dead worker is not listed forever. A file from another host sharing the state
directory cannot be checked by pid: it is removed once its beat is `forget_dead_after_s` old.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from messaging.consumer import ConsumerHealth, StuckPartition

__all__ = ["STALE_AFTER_S", "Heartbeat", "WorkerBeat", "read_heartbeats"]

INTERVAL_S = 5.0
STALE_AFTER_S = 20.0
HOST = socket.gethostname()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # a process of another user: alive
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class WorkerBeat:
    pid: int
    kinds: list[str]
    beat_at: float
    healthy: bool  # every worker thread alive
    parked: int = 0  # records its consumers parked since the process started
    stuck: tuple[StuckPartition, ...] = ()  # partitions held on one offset past the threshold
    host: str | None = None  # where the process runs (None: an older release's file, taken as this host)

    @property
    def local(self) -> bool:
        return self.host is None or self.host == HOST

    @property
    def gone(self) -> bool:
        """Its process ran on this host and is no longer alive."""
        return self.local and not _pid_alive(self.pid)

    @property
    def alive(self) -> bool:
        return not self.gone and time.time() - self.beat_at < STALE_AFTER_S


class Heartbeat:
    def __init__(self, state_dir: Path, kinds: list[str]) -> None:
        self.path = Path(state_dir) / "workers" / f"{os.getpid()}.json"
        self.kinds = kinds

    def beat(self, healthy: bool, consumers: Sequence[ConsumerHealth] = ()) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        stuck = [{"topic": s.topic, "partition": s.partition, "offset": s.offset, "since": s.since}
                 for health in consumers for s in health.stuck]
        tmp.write_text(json.dumps({
            "pid": os.getpid(), "host": HOST, "kinds": self.kinds, "beatAt": time.time(), "healthy": healthy,
            "parked": sum(health.parked for health in consumers), "stuck": stuck,
        }))
        tmp.replace(self.path)

    async def run(self, stop: asyncio.Event, alive: Callable[[], bool],
                  consumers: Callable[[], Sequence[ConsumerHealth]] = tuple) -> None:
        while not stop.is_set():
            self.beat(alive(), consumers())
            try:
                await asyncio.wait_for(stop.wait(), INTERVAL_S)
            except TimeoutError:
                pass

    def run_blocking(self, stop: threading.Event, alive: Callable[[], bool] = lambda: True) -> None:
        """`run` for a process without an event loop (the DLQ processor): beat in this thread until
        `stop`, then clear the file."""
        try:
            while not stop.is_set():
                self.beat(alive())
                stop.wait(INTERVAL_S)
        finally:
            self.clear()

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def read_heartbeats(state_dir: Path, *, forget_dead_after_s: float = 300.0) -> list[WorkerBeat]:
    """Every worker's last beat. The file of a process gone from this host is removed at once; one
    from another host whose beat is older than `forget_dead_after_s` as well."""
    beats = []
    for path in sorted((Path(state_dir) / "workers").glob("*.json")):
        try:
            raw = json.loads(path.read_text())
            beat = WorkerBeat(int(raw["pid"]), list(raw["kinds"]), float(raw["beatAt"]), bool(raw["healthy"]),
                              int(raw.get("parked", 0)),
                              tuple(StuckPartition(str(s["topic"]), int(s["partition"]), int(s["offset"]),
                                                   float(s["since"])) for s in raw.get("stuck", ())),
                              str(raw["host"]) if raw.get("host") else None)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if beat.gone or (not beat.alive and time.time() - beat.beat_at > forget_dead_after_s):
            path.unlink(missing_ok=True)  # a worker killed hard never cleared its file
            continue
        beats.append(beat)
    return beats
