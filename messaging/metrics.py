"""Counters of the runtime: in-process totals (for tests, benchmarks, `status` output) mirrored to
OpenTelemetry metrics (a no-op until a MeterProvider is installed)."""

from __future__ import annotations

import threading
from collections import Counter

from opentelemetry import metrics

__all__ = ["METRICS", "RuntimeMetrics"]


class RuntimeMetrics:
    """consumed, handled, duplicates, retries, dead_lettered, dlq_alerts, produced, spooled, replayed…"""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._meter = metrics.get_meter("cloud_factory.messaging")
        self._instruments: dict[str, metrics.Counter] = {}

    def add(self, name: str, amount: int = 1, **attributes: str) -> None:
        with self._lock:
            self._counts[name] += amount
            instrument = self._instruments.get(name)
            if instrument is None:
                instrument = self._instruments[name] = self._meter.create_counter(f"cloud_factory.{name}")
        instrument.add(amount, attributes or None)

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


METRICS = RuntimeMetrics()
