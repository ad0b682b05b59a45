"""Relays a service's outbox to Kafka: in id order, marked published only once acknowledged.

Any number of relays (worker replicas, a CLI's inline attempt) may run against one outbox; one at a
time relays a batch: it holds a transaction-scoped advisory lock on the outbox from taking the
oldest pending rows until the broker acknowledged them and they are marked, and the others step
aside (busy) meanwhile, so records reach Kafka in insertion order even across relays with
producers of their own. The rows are also taken `FOR UPDATE SKIP LOCKED`, and a batch that is not
the head of the queue is let go, as a second line of defence. A relay that dies
after the broker acknowledged but before its commit leaves the rows pending: the next relay sends
them again with the same eventId, and consumers deduplicate. Each record is published in a span
under the trace context its writer left in the row, so the writer's trace goes on to the consumers;
a row without one (written before the column existed, or outside any span) is sent as stored.
Given a retention, the worker loop also deletes rows published longer ago than that, every
`purge_every_s` (see `messaging.outbox.retention`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, Table, exists, func, select, update

from core.db import database_address, unreachable_database
from messaging.errors import PublishError
from messaging.outbox.records import decode_headers, writer_span
from messaging.outbox.retention import purge_published
from messaging.producer import Delivery, EventProducer

__all__ = ["OutboxRelay", "RelayResult"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelayResult:
    published: int = 0
    failed: int = 0
    busy: bool = False  # another relay holds the head of the queue


class OutboxRelay:
    def __init__(
        self,
        engine: Engine,
        table: Table,
        producer: EventProducer,
        *,
        batch_size: int = 200,
        ack_timeout_s: float = 30.0,
        retention: dt.timedelta | None = None,
        purge_every_s: float = 3600.0,
    ) -> None:
        self.engine = engine
        self.table = table
        self.producer = producer
        self.batch_size = batch_size
        self.ack_timeout_s = ack_timeout_s
        self.retention = retention  # None: published rows are kept (the CLI's inline relay)
        self.purge_every_s = purge_every_s
        self._next_purge = 0.0  # the first loop purges at once
        self._database_down = False  # the last attempt found the database unreachable

    def relay_once(self) -> RelayResult:
        """Publish the oldest pending batch (if this relay may); commit what the broker acknowledged."""
        t = self.table
        with self.engine.begin() as conn:
            # One relay at a time per outbox, until its batch is acknowledged and marked: the lock
            # ends with the transaction, so the next relay's records always follow these in Kafka.
            if not conn.execute(select(func.pg_try_advisory_xact_lock(func.hashtext(t.fullname)))).scalar():
                return RelayResult(busy=True)
            rows = (
                conn.execute(
                    select(t.c.id, t.c.event_id, t.c.event_type, t.c.topic, t.c.key, t.c.value,
                           t.c.headers, t.c.trace_context)
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
                .mappings()
                .all()
            )
            if not rows:
                return RelayResult()
            older = exists().where(t.c.published_at.is_(None), t.c.id < rows[0]["id"])
            if conn.execute(select(older)).scalar():  # another relay sends older rows: keep order, wait
                return RelayResult(busy=True)
            acked, error = self._send(rows)
            # Only a prefix: a row after a failed one is sent again next time (deduplicated downstream).
            done = [row["id"] for row in rows[: self._prefix(rows, acked)]]
            if done:
                conn.execute(update(t).where(t.c.id.in_(done)).values(published_at=func.now()))
            if len(done) < len(rows):
                conn.execute(
                    update(t)
                    .where(t.c.id == rows[len(done)]["id"])
                    .values(attempts=t.c.attempts + 1, last_error=str(error or "no acknowledgement"))
                )
        return RelayResult(published=len(done), failed=len(rows) - len(done))

    def _send(self, rows: Iterable[dict]) -> tuple[set[int], PublishError | None]:
        acked: set[int] = set()
        errors: list[PublishError] = []
        lock = threading.Lock()

        def callback(row_id: int):
            def on_delivery(err: PublishError | None, delivery: Delivery | None) -> None:
                with lock:
                    if err is None:
                        acked.add(row_id)
                    else:
                        errors.append(err)

            return on_delivery

        try:
            for row in rows:
                parent = writer_span(row["trace_context"])
                if parent is None:  # an older release's row (or written outside any span): sent as stored
                    self.producer.send_raw(
                        row["topic"],
                        key=row["key"],
                        value=row["value"],
                        headers=decode_headers(row["headers"]),
                        on_delivery=callback(row["id"]),
                    )
                    continue
                self.producer.send_relayed(
                    row["topic"],
                    key=row["key"],
                    value=row["value"],
                    headers=decode_headers(row["headers"]),
                    parent=parent,
                    event_type=row["event_type"],
                    event_id=row["event_id"],
                    on_delivery=callback(row["id"]),
                )
        except PublishError as exc:
            errors.append(exc)
        self.producer.flush(self.ack_timeout_s)
        return acked, (errors[0] if errors else None)

    @staticmethod
    def _prefix(rows: list, acked: set[int]) -> int:
        count = 0
        for row in rows:
            if row["id"] not in acked:
                break
            count += 1
        return count

    def drain(self) -> RelayResult:
        """Relay until nothing is pending, a publish fails, or another relay holds the head."""
        total = 0
        while True:
            result = self.relay_once()
            total += result.published
            if result.failed or result.busy or result.published == 0:
                return RelayResult(published=total, failed=result.failed, busy=result.busy)

    def run(self, stop: threading.Event, *, idle_s: float = 0.2, backoff_s: float = 2.0) -> None:
        """The worker loop: batch after batch until `stop` is set (the batch in hand is finished)."""
        while not stop.is_set():
            self._purge_when_due()
            try:
                result = self.relay_once()
            except Exception as exc:  # the database or broker hiccuped: keep the worker alive, try again
                self._log_failure(exc, backoff_s)
                stop.wait(backoff_s)
                continue
            if self._database_down:
                self._database_down = False
                log.info("outbox relay of %s: the database at %s answers again", self.table.fullname,
                         database_address(self.engine))
            if result.failed:
                log.warning("outbox %s: %d record(s) unacknowledged by Kafka", self.table.fullname,
                            result.failed)
            if not result.published:
                stop.wait(backoff_s if result.failed else idle_s)

    def _log_failure(self, exc: Exception, backoff_s: float) -> None:
        """One line naming the database when it is what went away (nothing was sent: the rows stay
        pending), a traceback for anything else."""
        down = unreachable_database(exc, self.engine)
        if down is None:
            log.exception("outbox relay of %s failed; retrying", self.table.fullname)
            return
        self._database_down = True
        log.warning("outbox relay of %s: %s; retrying in %g s", self.table.fullname, down, backoff_s)

    def _purge_when_due(self) -> None:
        if self.retention is None or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + self.purge_every_s
        try:
            purged = purge_published(self.engine, self.table, self.retention)
        except Exception as exc:  # the database hiccuped: relaying matters more, purge next time
            down = unreachable_database(exc, self.engine)
            if down is None:
                log.exception(
                    "purging outbox %s failed; next try in %.0f s", self.table.fullname, self.purge_every_s
                )
            else:
                log.warning("purging outbox %s: %s; next try in %.0f s", self.table.fullname, down,
                            self.purge_every_s)
            return
        if purged:
            log.info(
                "outbox %s: %d row(s) published over %s ago purged",
                self.table.fullname,
                purged,
                self.retention,
            )

    def pending(self, ids: Iterable[int] | None = None) -> int:
        """How many rows (of `ids`, or all) still wait for Kafka."""
        t = self.table
        query = select(func.count()).select_from(t).where(t.c.published_at.is_(None))
        if ids is not None:
            query = query.where(t.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
