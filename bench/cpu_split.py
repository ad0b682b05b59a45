"""Where the CPU went: seconds of CPU per named process tree between two readings, from /proc.

A process tree is a pid and its live descendants (PostgreSQL's backends, a server's helpers); the
time of children that ended in between is not seen, so the figures are a floor.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cloud_factory.stack.manager import Stack
from core.settings import Settings

__all__ = ["CpuMeter", "stack_pids"]

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of `pid`, None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def _tree_seconds(roots: Mapping[str, int], alone: frozenset[str]) -> dict[str, float]:
    stats = {int(p): s for p in os.listdir("/proc") if p.isdigit() and (s := _stat(int(p))) is not None}
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    totals = {}
    for name, root in roots.items():
        seen, todo = 0.0, [root]
        while todo:
            pid = todo.pop()
            if pid in stats:
                seen += stats[pid][1]
                if name not in alone:
                    todo.extend(children.get(pid, ()))
        totals[name] = seen
    return totals


def stack_pids(settings: Settings) -> dict[str, int]:
    """The running stack's servers by component name (kafka or kafka-1…, temporal, postgres)."""
    return {c.name: pid for c in Stack(settings).components if (pid := c.pid()) is not None}


class CpuMeter:
    """`start()`, run the work, `stop()` → CPU seconds per name over the interval. The names in
    `alone` count their own process only (a bench process whose children are measured apart)."""

    def __init__(self, roots: Mapping[str, int], *, alone: frozenset[str] = frozenset()) -> None:
        self.roots = dict(roots)
        self.alone = alone
        self._before: dict[str, float] = {}

    def start(self) -> None:
        self._before = _tree_seconds(self.roots, self.alone)

    def stop(self) -> dict[str, float]:
        after = _tree_seconds(self.roots, self.alone)
        return {name: after.get(name, 0.0) - self._before.get(name, 0.0) for name in self.roots}
