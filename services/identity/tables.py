"""Identity's own tables, in PostgreSQL schema `identity`. Secrets are stored only as hashes."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, MetaData, String, Table, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB, UUID

from messaging.outbox import outbox_table

__all__ = ["outbox", "api_keys", "metadata", "users"]

metadata = MetaData(schema="identity")

users = Table(
    "users",
    metadata,
    Column("user_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("email", String(254), nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("locale", String(8), nullable=False),
    Column("email_verified", Boolean, nullable=False, server_default="false"),
    Column("last_event_id", String(36)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("tenant_id", "email", name="users_tenant_email_key"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("api_key_id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("scopes", JSONB, nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_event_id", String(36)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Events waiting for Kafka, written with the rows they announce (see messaging/outbox/records.py).
outbox = outbox_table(metadata)
