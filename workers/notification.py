"""The Notification service worker: one consumer in group `notification` over every customer-facing event."""

from __future__ import annotations

import schemas
from cloud_factory.db import engine_for, ensure_schema
from cloud_factory.settings import Settings
from messaging.consumer import EventConsumer
from messaging.wiring import producer_from
from services.common import ALL_TENANTS, Emitter, TenantScope
from services.notification.handler import NotificationHandler
from services.notification.tables import metadata
from workers.consumers import consumer_for

__all__ = ["NOTIFICATION_GROUP", "build_notification_consumer"]

NOTIFICATION_GROUP = "notification"


def build_notification_consumer(
    settings: Settings,
    *,
    group_id: str = NOTIFICATION_GROUP,
    scope: TenantScope = ALL_TENANTS,
    **tuning: object,
) -> EventConsumer:
    engine = engine_for(settings.dsn)
    ensure_schema(engine, metadata)
    event_types = [entry.event_type for entry in schemas.catalog.subscriptions("notification")]
    handler = NotificationHandler(engine, Emitter(producer_from(settings), "notification"))
    return consumer_for(
        settings, group_id=group_id, scope=scope, **tuning, handlers={t: handler for t in event_types}
    )
