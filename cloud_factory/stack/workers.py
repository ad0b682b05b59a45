"""Worker health for `cloud-factory stack status`: one row per running worker process.

Workers are not part of the stack (any number may run, anywhere), so their rows inform and never
change the command's exit code; a worker whose heartbeat went stale (its process alive but silent,
or on another host) is shown as stale, one with a dead thread, parked records or a partition stuck
on one offset as degraded (the detail says which). A worker whose process is gone from this host is
not shown: its heartbeat file is removed (`workers.heartbeat.read_heartbeats`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WorkerHealth", "worker_health"]


@dataclass(frozen=True)
class WorkerHealth:
    pid: int
    kinds: str
    state: str  # healthy | degraded (thread died, records parked, partition stuck) | stale (no recent beat)
    last_beat_s: float
    detail: str = ""  # why degraded, e.g. "1 parked; stuck: <topic>[0]@5 for 75s"


def worker_health(state_dir: Path) -> list[WorkerHealth]:
    from workers.heartbeat import read_heartbeats

    rows = []
    now = time.time()
    for beat in read_heartbeats(state_dir):
        reasons = [] if beat.healthy else ["a worker thread died"]
        if beat.parked:
            reasons.append(f"{beat.parked} parked (see `cloud-factory dlq parked`)")
        if beat.stuck:
            reasons.append("stuck: " + ", ".join(f"{s} for {now - s.since:.0f}s" for s in beat.stuck))
        state = "stale" if not beat.alive else ("degraded" if reasons else "healthy")
        rows.append(WorkerHealth(beat.pid, ",".join(beat.kinds), state, now - beat.beat_at,
                                 "; ".join(reasons)))
    return rows
