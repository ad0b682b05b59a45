"""Garbage-collector settings for a long-running consumer process.

Decoding builds many small objects per record and a batch keeps them alive until it is committed;
with CPython's default thresholds (700, 10, 10) the collector then spends more time than decoding
itself, mostly re-scanning the large, immortal-in-practice heap of catalog models and validators.
Freezing what exists at start-up and collecting the young generation less often removes that cost;
reference cycles are still collected, just in larger steps.
"""

from __future__ import annotations

import gc

__all__ = ["tune_gc_for_throughput"]

_tuned = False


def tune_gc_for_throughput(young: int = 50_000) -> None:
    """Freeze the start-up heap and raise the young-generation threshold (once per process)."""
    global _tuned
    if _tuned:
        return
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, gc.get_threshold()[0]), middle, old)
    _tuned = True
