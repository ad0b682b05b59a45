"""Worker health for `cloud-factory stack status`: one row per running worker process.

Workers are not part of the stack (any number may run, anywhere), so their rows inform and never
change the command's exit code; a worker whose heartbeat went stale or whose process is gone is
shown as unhealthy.
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
    state: str  # healthy | degraded (a consumer thread died) | stale (no beat, or the process is gone)
    last_beat_s: float


def worker_health(state_dir: Path) -> list[WorkerHealth]:
    from workers.heartbeat import read_heartbeats

    rows = []
    for beat in read_heartbeats(state_dir):
        state = "stale" if not beat.alive else ("healthy" if beat.healthy else "degraded")
        rows.append(WorkerHealth(beat.pid, ",".join(beat.kinds), state, time.time() - beat.beat_at))
    return rows
