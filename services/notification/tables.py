"""Notification's own tables, in its own PostgreSQL schema `notification`."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import UUID

from messaging.outbox import outbox_table

__all__ = ["bounces", "mail_log", "metadata", "notifications", "outbox"]

metadata = MetaData(schema="notification")

notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("event_type", String(80), nullable=False),
    Column("event_version", String(8), nullable=False),
    Column("tenant_id", String(64), nullable=False, index=True),
    Column("correlation_id", UUID(as_uuid=True), nullable=False, index=True),
    Column("recipient", String(128), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("trace_id", String(32)),
    Column("source_topic", String(249), nullable=False),
    Column("source_partition", Integer, nullable=False),
    Column("source_offset", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # One message per event and channel, however often the event is delivered.
    UniqueConstraint("event_id", "channel", name="notifications_event_channel_key"),
)


# Addresses the local mail relay refuses (the simulator's failure injection): a delivery to one of
# these fails and is reported as `notification.failed`.
bounces = Table(
    "bounces",
    metadata,
    Column("recipient", String(128), primary_key=True),
    Column("error_code", String(64), nullable=False, server_default="MAILBOX_UNAVAILABLE"),
    Column("reason", String(200), nullable=False, server_default="recipient mailbox does not accept mail"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


# Every email the local mail relay accepted, as a real provider's sending log would show it: one row
# per hand-over, never deduplicated, so a mail handed over twice shows twice. `reference` is the
# notification's own key (event id / channel).
mail_log = Table(
    "mail_log",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("reference", String(80), nullable=False, index=True),
    Column("recipient", String(128), nullable=False, index=True),
    Column("subject", String(200), nullable=False),
    Column("accepted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


# `notification.sent` / `notification.failed` waiting for Kafka, written in the same transaction as
# the messages they report (see messaging/outbox/records.py); the notification worker relays them.
outbox = outbox_table(metadata)
