"""The transactional outbox of a service (Identity, Product and Support commands; Notification's
consumer).

A command (or a transactional handler) writes its domain rows and the *finished* Kafka record
(topic, key, signed value, headers, event id) into the service's own `outbox` table in one
transaction. Nothing is lost between the commit and Kafka: a relay (`OutboxRelay`) publishes rows
in id order and marks them published only after the broker acknowledged them; a re-publish after
a crash carries the same eventId, which consumers deduplicate.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass

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
from messaging.producer import record_headers

__all__ = ["OutboxRecord", "decode_headers", "encode_headers", "enqueue", "outbox_table", "record_for"]


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
    headers: list[tuple[str, bytes]]


def record_for(envelope: schemas.Envelope, keyring: schemas.Keyring, *, env: str) -> OutboxRecord:
    """Encode and sign `envelope` as the producer would (key = correlationId, same headers)."""
    value = schemas.encode(envelope)
    return OutboxRecord(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        topic=schemas.topic_for(envelope.event_type, env=env),
        key=str(envelope.correlation_id).encode(),
        value=value,
        headers=record_headers(envelope, value, keyring),
    )


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
        )
        .returning(table.c.id)
    ).scalar_one()
