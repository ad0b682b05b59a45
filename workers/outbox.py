"""Outbox relay workers: each service with an outbox (Identity, Product, Support, Notification) runs
one next to its work, publishing the outbox to Kafka.

Identity, Product and Support subscribe to nothing, so the relay is their whole worker; the
Notification worker runs it beside its consumer. Replicas may run anywhere: they share the outbox
through `FOR UPDATE SKIP LOCKED` (see OutboxRelay).
"""

from __future__ import annotations

import datetime as dt
import threading

import schemas
from core.db import engine_for, ensure_schema
from core.settings import Settings
from messaging.outbox import OutboxRelay
from messaging.wiring import ensure_catalog_topics, shared_producer_from
from services.common.outbox_services import OUTBOX_SERVICES, service_tables

__all__ = ["OUTBOX_SERVICES", "build_outbox_relay", "run_outbox_relay"]


def build_outbox_relay(settings: Settings, service: str) -> OutboxRelay:
    """The service's relay: its schema ensured, its topics created, the process's producer without
    file spool (the outbox already is the durable buffer; a broker outage leaves rows pending; the
    records are signed already, so every relay of the process shares it), and the
    retention `CF_OUTBOX_RETENTION_H` for published rows."""
    tables = service_tables(service)
    engine = engine_for(settings.dsn)
    ensure_schema(engine, tables.metadata)
    ensure_catalog_topics(settings, [e.event_type for e in schemas.catalog.published_by(service)])
    return OutboxRelay(
        engine,
        tables.outbox,
        shared_producer_from(settings, fallback=False),
        retention=dt.timedelta(hours=settings.outbox_retention_h),
    )


def run_outbox_relay(settings: Settings, service: str, stop: threading.Event) -> None:
    build_outbox_relay(settings, service).run(stop)
