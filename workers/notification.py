"""The Notification service worker: one consumer in group `notification` over every customer-facing event."""

from __future__ import annotations

import threading

import schemas
from cloud_factory.db import engine_for, ensure_schema
from cloud_factory.settings import Settings
from cloud_factory.tracing import configure_tracing
from messaging.consumer import EventConsumer
from messaging.wiring import ensure_catalog_topics, keyring_from, producer_from, signing_mode_from
from services.notification.handler import NotificationHandler
from services.notification.tables import metadata

__all__ = ["NOTIFICATION_GROUP", "build_notification_consumer", "run_notification_worker"]

NOTIFICATION_GROUP = "notification"


def build_notification_consumer(settings: Settings, *, group_id: str = NOTIFICATION_GROUP) -> EventConsumer:
    engine = engine_for(settings.dsn)
    ensure_schema(engine, metadata)
    event_types = [entry.event_type for entry in schemas.catalog.subscriptions("notification")]
    ensure_catalog_topics(settings, event_types)
    handler = NotificationHandler(engine)
    return EventConsumer(
        settings.bootstrap_servers,
        group_id=group_id,
        topics=[schemas.topic_for(t, env=settings.env) for t in event_types],
        handlers={t: handler for t in event_types},
        keyring=keyring_from(settings),
        signing_mode=signing_mode_from(settings),
        dlq_producer=producer_from(settings),
    )


def run_notification_worker(settings: Settings, stop: threading.Event) -> None:
    configure_tracing("notification-worker")
    build_notification_consumer(settings).run(stop)
