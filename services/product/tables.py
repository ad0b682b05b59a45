"""Product's own tables, in PostgreSQL schema `product`: the catalogue of products and plans."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, MetaData, String, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID

from messaging.outbox import outbox_table

__all__ = ["outbox", "metadata", "plans", "products"]

metadata = MetaData(schema="product")

products = Table(
    "products",
    metadata,
    Column("product_id", UUID(as_uuid=True), primary_key=True),
    Column("sku", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("category", String(32), nullable=False),
    Column("regions", JSONB, nullable=False),
    Column("discontinued", Boolean, nullable=False, server_default="false"),
    Column("last_event_id", String(36)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

plans = Table(
    "plans",
    metadata,
    Column("plan_id", String(64), primary_key=True),
    Column("product_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("billing_cycle", String(16), nullable=False),
    Column("limits", JSONB, nullable=False),
    Column("retired", Boolean, nullable=False, server_default="false"),
    Column("last_event_id", String(36)),
)

# Events waiting for Kafka, written with the rows they announce (see messaging/outbox/records.py).
outbox = outbox_table(metadata)
