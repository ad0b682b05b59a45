"""Parked records: the ones whose dead-lettering itself kept failing for the park window.

Parking is a record's last way off its partition. It is kept whole in `messaging.parked` — key, value
and headers byte for byte, why it failed and why the DLQ refused it — and only then is its offset
committed, so nothing is lost and nothing waits behind it. `cloud-factory dlq parked` lists them;
`dlq redrive TOPIC:PARTITION:OFFSET` re-publishes one to its topic exactly as it was (the consumers'
idempotency keys recognise what already ran) and marks it redriven; `dlq discard` abandons one on
purpose (the row stays, marked discarded, with the reason).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert

from core.db import ensure_schema_once
from messaging.dlq.letter import DeadLetter
from messaging.dlq.store import DlqPosition
from messaging.producer import Delivery, EventProducer
from messaging.tables import metadata, parked

__all__ = ["ParkedRecord", "ParkingLot", "discard_parked", "redrive_parked"]

PARKED = "parked"
REDRIVEN = "redriven"
DISCARDED = "discarded"


@dataclass(frozen=True)
class ParkedRecord:
    """One row of `messaging.parked`; `position` is the record's original topic:partition:offset."""

    id: int
    group_id: str
    position: DlqPosition
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    value_sha256: str
    event_id: str | None
    event_type: str | None
    error_class: str
    reason: str
    dlq_error: str
    attempts: int
    handler: str | None
    first_failure: dt.datetime | None
    status: str
    parked_at: dt.datetime
    redriven_at: dt.datetime | None
    note: str | None

    @property
    def size(self) -> int:
        return len(self.value)

    @classmethod
    def from_row(cls, row: Any) -> ParkedRecord:
        return cls(
            id=row.id, group_id=row.group_id, position=DlqPosition(row.topic, row.partition, row.offset),
            key=bytes(row.key) if row.key is not None else None, value=bytes(row.value),
            headers=[(name, base64.b64decode(value)) for name, value in row.headers],
            value_sha256=row.value_sha256, event_id=row.event_id, event_type=row.event_type,
            error_class=row.error_class, reason=row.reason, dlq_error=row.dlq_error, attempts=row.attempts,
            handler=row.handler, first_failure=row.first_failure, status=row.status, parked_at=row.parked_at,
            redriven_at=row.redriven_at, note=row.note,
        )


class ParkingLot:
    """The `messaging.parked` table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_schema_once(engine, metadata)

    def park(self, letter: DeadLetter, *, dlq_error: str) -> int:
        """Keep the whole record (committed before the consumer commits its offset); returns the row id.

        Parking the same offset for the same group again (a crash after parking, before the commit)
        updates that row instead of adding one."""
        values: dict[str, Any] = {
            "group_id": letter.group or "", "topic": letter.original_topic,
            "partition": letter.original_partition, "offset": letter.original_offset,
            "key": letter.key, "value": letter.value,
            "headers": [[name, base64.b64encode(value).decode()] for name, value in letter.headers],
            "value_size": len(letter.value), "value_sha256": hashlib.sha256(letter.value).hexdigest(),
            "event_id": letter.event_id, "event_type": letter.event_type,
            "error_class": letter.error_class.value, "reason": letter.reason, "dlq_error": dlq_error[:2000],
            "attempts": letter.attempts, "handler": letter.handler, "first_failure": letter.first_failure,
        }
        statement = insert(parked).values(values).on_conflict_do_update(
            constraint="parked_position_key",
            set_={"dlq_error": values["dlq_error"], "attempts": letter.attempts, "reason": letter.reason},
        ).returning(parked.c.id)
        with self.engine.begin() as conn:
            return int(conn.execute(statement).scalar_one())

    def records(self, *, topic_prefix: str = "", include_redriven: bool = False,
                limit: int = 100) -> list[ParkedRecord]:
        """Parked records of the topics starting with `topic_prefix` (an environment's, say), oldest
        first; with `include_redriven`, the redriven ones too."""
        query = (select(parked).where(parked.c.topic.startswith(topic_prefix, autoescape=True))
                 .order_by(parked.c.parked_at, parked.c.id).limit(limit))
        if not include_redriven:
            query = query.where(parked.c.status == PARKED)
        with self.engine.connect() as conn:
            return [ParkedRecord.from_row(row) for row in conn.execute(query)]

    def at(self, position: DlqPosition) -> list[ParkedRecord]:
        """Every row parked at this original position (one per consumer group that parked it)."""
        query = select(parked).where(and_(parked.c.topic == position.topic,
                                          parked.c.partition == position.partition,
                                          parked.c.offset == position.offset)).order_by(parked.c.id)
        with self.engine.connect() as conn:
            return [ParkedRecord.from_row(row) for row in conn.execute(query)]

    def settle(self, ids: Sequence[int], status: str, note: str) -> None:
        """Mark rows redriven or discarded (`redriven_at` is when it was settled either way)."""
        with self.engine.begin() as conn:
            conn.execute(update(parked).where(parked.c.id.in_(list(ids)))
                         .values(status=status, redriven_at=func.now(), note=note))

    def waiting_at(self, position: DlqPosition) -> list[ParkedRecord]:
        """The rows still parked at `position`; LookupError naming why when there are none."""
        rows = self.at(position)
        waiting = [row for row in rows if row.status == PARKED]
        if not waiting:
            if rows:
                row = max(rows, key=lambda r: r.redriven_at or r.parked_at)
                when = row.redriven_at or row.parked_at
                raise LookupError(f"{position} was already {row.status} ({when:%Y-%m-%d %H:%M:%S %Z})")
            raise LookupError(f"nothing is parked at {position}")
        return waiting


def redrive_parked(position: DlqPosition, producer: EventProducer, lot: ParkingLot, *,
                   note: str = "") -> Delivery:
    """Re-publish the record parked at `position` to its topic with its own key, value and headers
    (its signature still holds), once however many groups parked it, then mark it redriven.

    Raises LookupError when nothing is parked there, or when it was settled already."""
    waiting = lot.waiting_at(position)
    record = waiting[0]
    delivery = producer.publish_raw(position.topic, key=record.key, value=record.value,
                                    headers=record.headers)
    lot.settle([row.id for row in waiting], REDRIVEN, note or "redriven")
    return delivery


def discard_parked(position: DlqPosition, lot: ParkingLot, *, reason: str) -> int:
    """Abandon the record parked at `position` on purpose; returns how many rows (groups) it settled."""
    waiting = lot.waiting_at(position)
    lot.settle([row.id for row in waiting], DISCARDED, reason)
    return len(waiting)
