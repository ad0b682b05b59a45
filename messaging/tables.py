"""The runtime's own tables, in PostgreSQL schema `messaging`, created from this metadata by
`core.db.ensure_schema` (no hand-run DDL): idempotency keys, DLQ records (the audit trail of
every DLQ outcome), incidents for manual review, hourly DLQ alerts, the whole values of records
dead-lettered as references, and parked records (those the DLQ itself kept refusing)."""

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

__all__ = ["dlq_alerts", "dlq_incidents", "dlq_records", "dlq_values", "idempotency_keys", "metadata",
           "parked"]

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

# The whole value of a record dead-lettered as a reference (its DLQ record carries the first KiB),
# content-addressed, so keeping it again after a crash is a no-op.
dlq_values = Table(
    "dlq_values",
    metadata,
    Column("sha256", String(64), primary_key=True),  # hex, as in `x-cf-dlq-value-sha256`
    Column("size", BigInteger, nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("stored_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# A record whose dead-lettering kept failing for the park window: kept here whole (key, value, headers
# byte for byte), its offset committed, until `cloud-factory dlq redrive` re-publishes it.
parked = Table(
    "parked",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("group_id", String(249), nullable=False),
    Column("topic", String(249), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("key", LargeBinary),
    Column("value", LargeBinary, nullable=False),
    Column("headers", JSONB, nullable=False),  # [[name, base64 value], …] in record order
    Column("value_size", BigInteger, nullable=False),
    Column("value_sha256", String(64), nullable=False),
    Column("event_id", String(64)),
    Column("event_type", String(80)),
    Column("error_class", String(32), nullable=False),
    Column("reason", Text, nullable=False),  # why the record failed
    Column("dlq_error", Text, nullable=False),  # why it could not be dead-lettered
    Column("attempts", Integer, nullable=False, server_default="1"),
    Column("handler", String(200)),
    Column("first_failure", DateTime(timezone=True)),
    Column("status", String(16), nullable=False, server_default="parked"),  # parked | redriven | discarded
    Column("parked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("redriven_at", DateTime(timezone=True)),  # when it was redriven (or discarded)
    Column("note", Text),
    UniqueConstraint("group_id", "topic", "partition", "offset", name="parked_position_key"),
    Index("parked_status_time", "status", "parked_at"),
)
