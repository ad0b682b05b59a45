"""In-place retries: a failing record blocks only its own partition.

The partition is paused and rewound to the record, and resumed when its backoff has passed; the
other partitions keep flowing. One `RetryState` per partition remembers the offset being retried,
how often it failed and since when (the heartbeat's "stuck" partitions are read from it).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Message, TopicPartition

from messaging.consumer.health import StuckPartition
from messaging.consumer.inflight import TP, InFlight
from messaging.metrics import METRICS

__all__ = ["InPlaceRetries", "RetryState"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class RetryState:
    """In-place retries of the message at `offset` of one partition."""

    offset: int
    failures: int = 0
    first_failure: dt.datetime = field(default_factory=_now)
    last_failure: dt.datetime = field(default_factory=_now)
    resume_at: float | None = None  # monotonic time the partition is resumed; None: not paused
    dlq_failing_since: float | None = None  # monotonic time dead-lettering it first failed


class InPlaceRetries:
    """The retry state of each partition of `consumer`, and its pause / seek / resume."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer
        self._states: dict[TP, RetryState] = {}

    def paused(self, tp: TP) -> bool:
        """Waiting out a backoff: what was fetched behind the record is fetched again later."""
        if not self._states:  # the usual case: no partition is retrying
            return False
        state = self._states.get(tp)
        return state is not None and state.resume_at is not None

    def attempt(self, item: InFlight) -> int:
        """1 on first delivery, n on the (n-1)th in-place retry of this very record."""
        if not self._states:
            return 1
        state = self._states.get(item.tp)
        return state.failures + 1 if state is not None and state.offset == item.offset else 1

    def state_of(self, msg: Message) -> RetryState:
        """The state of this record's retries, a fresh one when its partition was retrying another."""
        tp = (msg.topic(), msg.partition())
        state = self._states.get(tp)
        if state is None or state.offset != msg.offset():
            state = self._states[tp] = RetryState(msg.offset())
        return state

    def handled(self, item: InFlight) -> None:
        """The record got through (handled, dead-lettered or parked): its partition is no longer held."""
        if not self._states:
            return
        state = self._states.get(item.tp)
        if state is not None and state.offset == item.offset:
            del self._states[item.tp]

    def forget(self, tp: TP) -> None:
        self._states.pop(tp, None)

    def retry_later(self, msg: Message, state: RetryState, delay: float) -> None:
        """Pause the record's partition and rewind it to the record; resumed after `delay` seconds."""
        self._consumer.pause([TopicPartition(msg.topic(), msg.partition())])
        self._consumer.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset()))
        state.resume_at = time.monotonic() + delay
        METRICS.add("retries")

    def next_wake(self) -> float | None:
        """The monotonic time the next paused partition is due, if any is paused."""
        wake = [s.resume_at for s in self._states.values() if s.resume_at is not None]
        return min(wake) if wake else None

    def resume_due(self) -> None:
        now = time.monotonic()
        due = [tp for tp, state in self._states.items()
               if state.resume_at is not None and state.resume_at <= now]
        if due:
            self._consumer.resume([TopicPartition(topic, partition) for topic, partition in due])
            for tp in due:
                self._states[tp].resume_at = None

    def stuck(self, after_s: float) -> tuple[StuckPartition, ...]:
        """Partitions held on one offset for longer than `after_s` (safe from another thread: it reads
        a snapshot of the states)."""
        now = time.time()
        stuck = []
        for (topic, partition), state in list(self._states.items()):
            since = state.first_failure.timestamp()
            if now - since > after_s:
                stuck.append(StuckPartition(topic, partition, state.offset, since))
        return tuple(stuck)
