"""Support's own tables, in PostgreSQL schema `support`: tickets and their replies (full bodies
stay here; events carry a preview)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, func
from sqlalchemy.dialects.postgresql import UUID

from messaging.outbox import outbox_table

__all__ = ["outbox", "metadata", "replies", "tickets"]

metadata = MetaData(schema="support")

tickets = Table(
    "tickets",
    metadata,
    Column("ticket_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("customer_id", UUID(as_uuid=True), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("category", String(16), nullable=False),
    Column("order_id", UUID(as_uuid=True)),
    Column("state", String(16), nullable=False),  # open → resolved → (reopened → …) → closed
    Column("tier", Integer, nullable=False, server_default="1"),
    Column("assignee_id", UUID(as_uuid=True)),
    Column("reopen_count", Integer, nullable=False, server_default="0"),
    Column("last_event_id", String(36)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

replies = Table(
    "replies",
    metadata,
    Column("reply_id", UUID(as_uuid=True), primary_key=True),
    Column("ticket_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("author", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Events waiting for Kafka, written with the rows they announce (see messaging/outbox/records.py).
outbox = outbox_table(metadata)
