"""The Notification service worker: one consumer in group `notification` over every customer-facing
event, and the relay that publishes Notification's outbox (`notification.sent` / `.failed`)."""

from __future__ import annotations

from sqlalchemy import Table

import schemas
from core.db import engine_for, ensure_schema
from core.settings import Settings
from messaging import EventConsumer, HandlerSpec
from messaging.wiring import keyring_from
from services.common import ALL_TENANTS, TenantScope
from services.common.outbox_emitter import OutboxEmitter
from services.notification.handler import NotificationHandler
from services.notification.tables import metadata
from services.notification.tables import outbox as notification_outbox
from workers.consumers import consumer_for

__all__ = ["NOTIFICATION_GROUP", "build_notification_consumer"]

NOTIFICATION_GROUP = "notification"


def build_notification_consumer(
    settings: Settings,
    *,
    group_id: str = NOTIFICATION_GROUP,
    scope: TenantScope = ALL_TENANTS,
    outbox: Table = notification_outbox,
    **tuning: object,
) -> EventConsumer:
    """Messages, their reports (queued in `outbox`) and the record's idempotency key commit in one
    transaction (a transactional handler). A tenant-scoped consumer (a shard, a test, the demo)
    refuses other tenants' records before any key or transaction, so catching up on a long history
    stays cheap. Tests pass their own `outbox` table so that no other relay publishes it."""
    engine = engine_for(settings.dsn)
    ensure_schema(engine, metadata)
    if outbox.metadata is not metadata:
        ensure_schema(engine, outbox.metadata)
    event_types = [entry.event_type for entry in schemas.catalog.subscriptions("notification")]
    emitter = OutboxEmitter("notification", outbox, keyring_from(settings), env=settings.env, track=False)
    spec = HandlerSpec(NotificationHandler(engine, emitter), transactional=True)
    return consumer_for(
        settings, group_id=group_id, scope=scope, **tuning, handlers={t: spec for t in event_types}
    )
