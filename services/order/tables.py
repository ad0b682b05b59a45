"""The Order service's own tables, in PostgreSQL schema `orders`: incidents for manual review."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

__all__ = ["incidents", "metadata"]

metadata = MetaData(schema="orders")

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow_id", String(200), nullable=False),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("order_id", UUID(as_uuid=True), nullable=False),
    Column("correlation_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("failed_step", String(64), nullable=False),
    Column("completed_steps", JSONB, nullable=False),
    # Every undo that failed, first one first (= failed_step); `[]` on rows from before it existed
    # (added to older tables by `ensure_schema`, which is why it has a server default).
    Column("failed_steps", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("reason", Text, nullable=False),
    Column("state", String(16), nullable=False, server_default="open"),
    Column("opened_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # How a person closed it (`retried`: the undos ran again and finished; `resolved`: fixed by
    # hand, `note` says how). NULL while open and on rows from before incidents could be closed.
    Column("resolution", String(16), nullable=True),
    Column("note", Text, nullable=True),
    Column("closed_by", String(128), nullable=True),
    Column("closed_at", DateTime(timezone=True), nullable=True),
    # One incident per saga and failed step, however often the activity is retried.
    UniqueConstraint("workflow_id", "failed_step", name="incidents_workflow_step_key"),
)
