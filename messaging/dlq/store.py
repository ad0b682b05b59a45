"""PostgreSQL side of the DLQ: one audit row per dead-lettered record and what became of it,
incidents for manual review, at most one alert per original topic per hour, and the whole values of
records dead-lettered as references (too big for a DLQ record)."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert

from core.db import ensure_schema_once
from messaging.dlq.letter import DeadLetter
from messaging.tables import dlq_alerts, dlq_incidents, dlq_records, dlq_values, metadata

__all__ = ["DlqPosition", "DlqStore"]


@dataclass(frozen=True, slots=True)
class DlqPosition:
    """Where a DLQ record sits; printed and parsed as `topic:partition:offset`."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> DlqPosition:
        """Raises ValueError with a one-line message naming what is wrong."""
        parts = text.rsplit(":", 2)
        if len(parts) != 3 or not parts[0]:
            raise ValueError(f"{text!r} is not topic:partition:offset")
        topic, partition, offset = parts
        if not partition.isdigit() or not offset.isdigit():
            raise ValueError(f"{text!r}: partition and offset must be whole numbers (topic:partition:offset)")
        return cls(topic, int(partition), int(offset))


class DlqStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_schema_once(engine, metadata)

    def record(self, position: DlqPosition, letter: DeadLetter, outcome: str, note: str = "",
               *, correlation_id: str | None = None, tenant_id: str | None = None) -> int:
        """Upsert the audit row of one DLQ record with its (latest) outcome; returns its id."""
        values: dict[str, Any] = {
            "dlq_topic": position.topic, "dlq_partition": position.partition, "dlq_offset": position.offset,
            "original_topic": letter.original_topic, "original_partition": letter.original_partition,
            "original_offset": letter.original_offset, "event_id": letter.event_id,
            "event_type": letter.event_type, "correlation_id": correlation_id, "tenant_id": tenant_id,
            "error_class": letter.error_class.value, "reason": letter.reason, "handler": letter.handler,
            "attempts": letter.attempts, "dlq_retries": letter.dlq_retries,
            "first_failure": letter.first_failure, "last_failure": letter.last_failure,
            "outcome": outcome, "outcome_note": note, "value": letter.value,
            "headers": [[k, v.decode(errors="replace")] for k, v in letter.record_headers()],
        }
        statement = insert(dlq_records).values(values).on_conflict_do_update(
            constraint="dlq_records_position_key",
            set_={"outcome": outcome, "outcome_note": note, "updated_at": func.now()},
        ).returning(dlq_records.c.id)
        with self.engine.begin() as conn:
            return int(conn.execute(statement).scalar_one())

    def keep_value(self, value: bytes) -> str:
        """Store a whole value before a reference to it is dead-lettered; returns its sha256 (hex)."""
        digest = hashlib.sha256(value).hexdigest()
        statement = insert(dlq_values).values(sha256=digest, size=len(value), value=value)
        with self.engine.begin() as conn:
            conn.execute(statement.on_conflict_do_nothing(index_elements=["sha256"]))
        return digest

    def full_value(self, letter: DeadLetter) -> bytes:
        """The letter's whole value: its own, or for a reference the one kept here (checked against
        its sha256). Raises LookupError when a reference's value is not (or no longer) here."""
        if not letter.is_reference:
            return letter.value
        with self.engine.connect() as conn:
            value = conn.execute(select(dlq_values.c.value)
                                 .where(dlq_values.c.sha256 == letter.value_sha256)).scalar_one_or_none()
        if value is None or hashlib.sha256(value).hexdigest() != letter.value_sha256:
            raise LookupError(f"the value of this reference (sha256 {letter.value_sha256}) is not in "
                              "messaging.dlq_values")
        return bytes(value)

    def open_incident(self, record_id: int, summary: str) -> None:
        statement = insert(dlq_incidents).values(dlq_record_id=record_id, summary=summary)
        with self.engine.begin() as conn:
            conn.execute(statement.on_conflict_do_nothing(index_elements=["dlq_record_id"]))

    def resolve_incident(self, record_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(dlq_incidents).where(dlq_incidents.c.dlq_record_id == record_id)
                         .values(status="resolved", resolved_at=func.now()))

    def recent_count(self, original_topic: str, window: dt.timedelta = dt.timedelta(hours=1)) -> int:
        since = dt.datetime.now(dt.UTC) - window
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(dlq_records).where(and_(
                dlq_records.c.original_topic == original_topic,
                dlq_records.c.recorded_at >= since))).scalar_one())

    def raise_alert(self, original_topic: str, records: int) -> bool:
        """True the first time in this clock hour (so one alert per topic per hour)."""
        hour = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
        statement = insert(dlq_alerts).values(original_topic=original_topic, hour=hour, records=records)
        with self.engine.begin() as conn:
            inserted = conn.execute(statement.on_conflict_do_nothing(
                constraint="dlq_alerts_topic_hour_key").returning(dlq_alerts.c.id)).first()
        return inserted is not None

    def outcomes(self, positions: list[DlqPosition]) -> dict[DlqPosition, dict[str, Any]]:
        """Audit rows (with incident status) of the given records."""
        if not positions:
            return {}
        topics = sorted({p.topic for p in positions})
        query = (select(dlq_records, dlq_incidents.c.status.label("incident"))
                 .outerjoin(dlq_incidents, dlq_incidents.c.dlq_record_id == dlq_records.c.id)
                 .where(dlq_records.c.dlq_topic.in_(topics)))
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        wanted = set(positions)
        found = {}
        for row in rows:
            position = DlqPosition(row["dlq_topic"], row["dlq_partition"], row["dlq_offset"])
            if position in wanted:
                found[position] = dict(row)
        return found
