"""The runtime's own tables, in PostgreSQL schema `messaging`, created from this metadata by
`cloud_factory.db.ensure_schema` (no hand-run DDL): idempotency keys, DLQ records (the audit trail of
every DLQ outcome), incidents for manual review, and hourly DLQ alerts."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

__all__ = ["dlq_alerts", "dlq_incidents", "dlq_records", "idempotency_keys", "metadata"]

metadata = MetaData(schema="messaging")

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(64), primary_key=True),  # sha256(eventId + correlationId + handler), hex
    Column("handler", String(200), nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("correlation_id", UUID(as_uuid=True), nullable=False),
    Column("status", String(16), nullable=False),  # in_progress | succeeded | failed
    Column("result", JSONB),
    Column("owner", String(120)),
    Column("lease_until", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("idempotency_keys_expires_at", "expires_at"),
)

dlq_records = Table(
    "dlq_records",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("dlq_topic", String(249), nullable=False),
    Column("dlq_partition", Integer, nullable=False),
    Column("dlq_offset", BigInteger, nullable=False),
    Column("original_topic", String(249), nullable=False, index=True),
    Column("original_partition", Integer),
    Column("original_offset", BigInteger),
    Column("event_id", String(64)),
    Column("event_type", String(80)),
    Column("correlation_id", String(64)),
    Column("tenant_id", String(64)),
    Column("error_class", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("handler", String(200)),
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("dlq_retries", Integer, nullable=False, server_default="0"),
    Column("first_failure", DateTime(timezone=True)),
    Column("last_failure", DateTime(timezone=True)),
    Column("outcome", String(24), nullable=False),  # retried | discarded | manual_review | redriven
    Column("outcome_note", Text),
    Column("value", LargeBinary, nullable=False),
    Column("headers", JSONB, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("dlq_topic", "dlq_partition", "dlq_offset", name="dlq_records_position_key"),
    Index("dlq_records_topic_time", "original_topic", "recorded_at"),
)

dlq_incidents = Table(
    "dlq_incidents",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("dlq_record_id", BigInteger, nullable=False, unique=True),
    Column("status", String(16), nullable=False, server_default="open"),  # open | resolved
    Column("summary", Text, nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("resolved_at", DateTime(timezone=True)),
)

dlq_alerts = Table(
    "dlq_alerts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("original_topic", String(249), nullable=False),
    Column("hour", DateTime(timezone=True), nullable=False),
    Column("records", Integer, nullable=False),
    Column("raised_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("original_topic", "hour", name="dlq_alerts_topic_hour_key"),
)
