"""The transactional outbox of a service (Identity, Product and Support commands; Notification's
consumer).

A command (or a transactional handler) writes its domain rows and the *finished* Kafka record
(topic, key, signed value, headers, event id) into the service's own `outbox` table in one
transaction, with the W3C trace context of the span that wrote it (`trace_context`): the relay
publishes the record in a span under that context, so the flow's trace goes on across the outbox.
Nothing is lost between the commit and Kafka: a relay (`OutboxRelay`) publishes rows in id order
and marks them published only after the broker acknowledged them; a re-publish after a crash
carries the same eventId, which consumers deduplicate.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass

from opentelemetry import trace
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

import schemas
from core.tracing import fast_inject, parse_traceparent
from messaging.producer import record_headers

__all__ = [
    "OutboxRecord",
    "decode_headers",
    "encode_headers",
    "enqueue",
    "outbox_table",
    "record_for",
    "writer_span",
]


def outbox_table(metadata: MetaData, name: str = "outbox") -> Table:
    """The outbox table in `metadata`'s schema; the partial index keeps the relay's scan small."""
    table = Table(
        name,
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("event_type", String(100), nullable=False),
        Column("topic", String(249), nullable=False),
        Column("key", LargeBinary),
        Column("value", LargeBinary, nullable=False),
        Column("headers", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text),
        # `traceparent` (and `tracestate`) of the span that wrote the row; NULL on rows written before
        # the column existed (`ensure_schema` adds it to older tables), which are sent as stored.
        Column("trace_context", JSONB),
    )
    Index(f"{name}_pending_idx", table.c.id, postgresql_where=table.c.published_at.is_(None))
    # Retention deletes by publication time; without it each purge scans the whole table.
    Index(f"{name}_published_idx", table.c.published_at, postgresql_where=table.c.published_at.is_not(None))
    return table


@dataclass(frozen=True)
class OutboxRecord:
    """Exactly the bytes the relay will hand to Kafka (signed at command time)."""

    event_id: uuid.UUID
    event_type: str
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]  # without trace headers: the relay's publish span adds its own
    trace_context: dict[str, str] | None = None  # the writer's `traceparent`/`tracestate`


def record_for(envelope: schemas.Envelope, keyring: schemas.Keyring, *, env: str) -> OutboxRecord:
    """Encode and sign `envelope` as the producer would (key = correlationId, same headers), and keep
    the current span's trace context — the producer's own injection — for the relay to continue."""
    value = schemas.encode(envelope)
    return OutboxRecord(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        topic=schemas.topic_for(envelope.event_type, env=env),
        key=str(envelope.correlation_id).encode(),
        value=value,
        headers=record_headers(envelope, value, keyring, trace_headers=[]),
        trace_context={name: raw.decode() for name, raw in fast_inject()} or None,
    )


def writer_span(trace_context: dict[str, str] | None) -> trace.SpanContext | None:
    """The span that wrote a row, from its stored `trace_context` (None: none was stored or it is
    not a valid `traceparent`)."""
    if not trace_context:
        return None
    return parse_traceparent(trace_context.get("traceparent"), trace_context.get("tracestate"))


def encode_headers(headers: list[tuple[str, bytes]]) -> list[list[str]]:
    return [[name, base64.b64encode(value).decode()] for name, value in headers]


def decode_headers(raw: list[list[str]]) -> list[tuple[str, bytes]]:
    return [(name, base64.b64decode(value)) for name, value in raw]


def enqueue(conn: Connection, table: Table, record: OutboxRecord) -> int:
    """Insert `record` inside the caller's transaction; returns its outbox id (the relay order)."""
    return conn.execute(
        table.insert()
        .values(
            event_id=str(record.event_id),
            event_type=record.event_type,
            topic=record.topic,
            key=record.key,
            value=record.value,
            headers=encode_headers(record.headers),
            trace_context=record.trace_context,
        )
        .returning(table.c.id)
    ).scalar_one()
