"""Re-publishes the file fallback once Kafka is back: in order, keeping eventId, key and headers.

A batch of spooled lines is produced through the idempotent producer (ordered per partition),
flushed, then the cursor moves past the longest prefix that the broker acknowledged. A line the
broker refuses for good (or that is not a record at all) moves to the `.failed` file; a line that
failed because the broker went away again stays, and replay stops until the next round.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from messaging.fallback.spool import FallbackSpool, SpooledRecord
from messaging.metrics import METRICS

__all__ = ["ReplayReport", "SpoolReplayer"]

log = logging.getLogger(__name__)

_UNAVAILABLE = frozenset({KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TRANSPORT,
                          KafkaError._ALL_BROKERS_DOWN, KafkaError.REQUEST_TIMED_OUT,
                          KafkaError.NETWORK_EXCEPTION})


@dataclass
class ReplayReport:
    replayed: int = 0
    failed: int = 0
    remaining: bool = False


class SpoolReplayer:
    """Drains one spool through one confluent-kafka Producer; runs in a daemon thread when started."""

    def __init__(self, producer: Producer, spool: FallbackSpool, *, interval: float = 1.0,
                 batch_size: int = 10_000, flush_timeout: float = 60.0,
                 ensure_topic: Callable[[str], bool] | None = None) -> None:
        self.producer = producer
        # Records spooled while the broker was down may name topics it has not created yet.
        self.ensure_topic = ensure_topic
        self.spool = spool
        self.interval = interval
        self.batch_size = batch_size
        self.flush_timeout = flush_timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self._replay_lock = threading.Lock()

    def start(self) -> None:
        """Run in the background until the spool is empty (idempotent)."""
        with self._guard:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="spool-replayer", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.replay()
            except Exception:  # noqa: BLE001 - the replayer must outlive any single bad round
                log.exception("spool replay round failed; trying again")
                report = ReplayReport(remaining=True)
            if not report.remaining:
                return
            self._stop.wait(self.interval)

    def broker_reachable(self, timeout: float = 2.0) -> bool:
        try:
            return bool(self.producer.list_topics(timeout=timeout).brokers)
        except KafkaException:
            return False

    def replay(self, on_progress: Callable[[ReplayReport], None] | None = None) -> ReplayReport:
        """One pass over the spool; `remaining` tells whether anything is still waiting.

        `on_progress` gets the running report after every batch (a CLI draws its progress bar
        from it: a large spool takes a while to drain)."""
        report = ReplayReport()
        with self._replay_lock:
            while not self._stop.is_set():
                batch = self.spool.next_batch(self.batch_size)
                if batch is None:
                    return report
                if not self.broker_reachable():
                    report.remaining = True
                    return report
                outcomes: list[KafkaError | None | str] = [None] * len(batch.lines)
                acked = [False] * len(batch.lines)
                for index, (_, line) in enumerate(batch.lines):
                    try:
                        record = SpooledRecord.from_line(line)
                    except (ValueError, KeyError, TypeError) as exc:
                        outcomes[index] = f"not a spooled record: {exc}"
                        continue
                    self._produce(record, index, outcomes, acked)
                self.producer.flush(self.flush_timeout)
                upto = batch.start
                stalled = False
                for index, (end, line) in enumerate(batch.lines):
                    outcome = outcomes[index]
                    if acked[index]:
                        report.replayed += 1
                    elif isinstance(outcome, str) or (isinstance(outcome, KafkaError)
                                                      and outcome.code() not in _UNAVAILABLE
                                                      and not outcome.retriable()):
                        reason = outcome if isinstance(outcome, str) else outcome.str()
                        self.spool.quarantine(batch, line, reason)
                        report.failed += 1
                        log.error("spooled record moved to .failed: %s", reason)
                    else:
                        stalled = True
                        break
                    upto = end
                self.spool.advance(batch, upto)
                METRICS.add("replayed", report.replayed)
                if on_progress is not None:
                    on_progress(report)
                if stalled:
                    report.remaining = True
                    return report
        report.remaining = self.spool.has_pending()
        return report

    def _produce(self, record: SpooledRecord, index: int, outcomes: list[KafkaError | None | str],
                 acked: list[bool]) -> None:
        def delivered(err: KafkaError | None, _msg: Message) -> None:
            outcomes[index] = err
            acked[index] = err is None

        if self.ensure_topic is not None:
            self.ensure_topic(record.topic)
        while True:
            try:
                self.producer.produce(record.topic, value=record.value, key=record.key,
                                      headers=record.headers, on_delivery=delivered)
                return
            except BufferError:
                self.producer.poll(0.05)
            except KafkaException as exc:
                outcomes[index] = f"cannot produce: {exc}"
                return
