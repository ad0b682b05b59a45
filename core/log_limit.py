"""A limit on repeated log lines: the same message from the same source at most once per interval.

During an outage a client library repeats itself — librdkafka logs every failed reconnect of every
client, Temporal's core every retried call — and a worker would print thousands of identical lines.
`RepeatFilter` on a logger lets the first one through, holds back the repeats for the interval
(`CF_LOG_REPEAT_S` seconds, default 30), and marks the next line it lets through with how many it
held back: `repeated` in the JSON line, "(repeated N times)" in its message. The key is the logger,
the record's `client` (when it has one) and the message without its volatile parts (durations,
librdkafka's own "N identical error(s) suppressed").
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Hashable

__all__ = ["DEFAULT_REPEAT_INTERVAL_S", "RepeatFilter", "RepeatLimiter", "limited_logger",
           "repeat_interval_s"]

DEFAULT_REPEAT_INTERVAL_S = 30.0
_MAX_KEYS = 2048  # idle keys beyond this are forgotten (a flood of distinct lines stays bounded)
_install = threading.Lock()
_VOLATILE = re.compile(r"\d+(?:\.\d+)?\s?(?:ms|s)\b|\d+ times\b|\d+ identical error\(s\) suppressed")


def repeat_interval_s() -> float:
    """`CF_LOG_REPEAT_S` (seconds; default 30); a value that is not a positive number means the default."""
    try:
        value = float(os.environ.get("CF_LOG_REPEAT_S", DEFAULT_REPEAT_INTERVAL_S))
    except ValueError:
        return DEFAULT_REPEAT_INTERVAL_S
    return value if value > 0 else DEFAULT_REPEAT_INTERVAL_S


class RepeatLimiter:
    """Per key: admit once per `interval_s`, count what it held back meanwhile (thread-safe)."""

    def __init__(self, interval_s: float = DEFAULT_REPEAT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._seen: dict[Hashable, list[float]] = {}  # key → [last admitted at, held back since]
        self._lock = threading.Lock()

    def admit(self, key: Hashable) -> int | None:
        """None: hold this one back; else admit it, and the number held back since the last admitted."""
        now = self._clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is not None and now - entry[0] < self.interval_s:
                entry[1] += 1
                return None
            held = int(entry[1]) if entry is not None else 0
            if entry is None and len(self._seen) >= _MAX_KEYS:
                self._forget_idle(now)
            self._seen[key] = [now, 0]
            return held

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, (at, held) in self._seen.items() if not held and now - at >= self.interval_s]:
            del self._seen[key]
        if len(self._seen) >= _MAX_KEYS:  # all busy: drop the oldest half rather than grow
            for key in sorted(self._seen, key=lambda k: self._seen[k][0])[: _MAX_KEYS // 2]:
                del self._seen[key]


class RepeatFilter(logging.Filter):
    """A logging filter over `RepeatLimiter`; the line let through after repeats says how many."""

    def __init__(self, interval_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.limiter = RepeatLimiter(repeat_interval_s() if interval_s is None else interval_s, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        held = self.limiter.admit((record.name, getattr(record, "client", None), _VOLATILE.sub("#", message)))
        if held is None:
            return False
        if held:
            record.msg, record.args = f"{message} (repeated {held} times)", ()
            record.repeated = held
        return True


def limited_logger(name: str) -> logging.Logger:
    """`logging.getLogger(name)` with one `RepeatFilter` on it (added once per process)."""
    logger = logging.getLogger(name)
    with _install:
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter())
    return logger
