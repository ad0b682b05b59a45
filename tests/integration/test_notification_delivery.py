"""Notification reports every message it handles: `notification.sent`, or `notification.failed`
when the channel refuses it (the simulated mail relay bounces listed recipients). The reports go
through Notification's outbox, so the test runs the consumer and the relay, as the worker does."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer

import schemas
from core.db import engine_for
from core.settings import Settings
from messaging.wiring import ensure_catalog_topics, producer_from
from services.common import TenantScope
from services.notification.delivery import refuse_mail_to
from services.notification.subscriptions import SUBSCRIPTIONS as NOTIFICATION
from workers.consumers import build_consumer
from workers.outbox import build_outbox_relay
from workflows.contracts import OrderRequest

pytestmark = pytest.mark.stack


def _reports(
    settings: Settings, group: str, tenant: str, want: int, timeout: float = 60
) -> list[schemas.Envelope]:
    """The notification.sent/failed events of `tenant`, read from their topics."""
    # On a fresh broker these topics appear with the first report; a reader subscribed before that
    # would not see them until its next metadata refresh.
    ensure_catalog_topics(settings, ["notification.sent", "notification.failed"])
    reader = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    reader.subscribe(
        [schemas.topic_for(t, env=settings.env) for t in ("notification.sent", "notification.failed")]
    )
    found: list[schemas.Envelope] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < want and time.monotonic() < deadline:
            for msg in reader.consume(200, 0.5):
                if msg.error() is None:
                    envelope = schemas.decode(msg.value())
                    if envelope.tenant_id == tenant:
                        found.append(envelope)
    finally:
        reader.close()
    return found


def test_bounced_email_is_reported_failed_and_in_app_sent(stack, settings: Settings, unique: str) -> None:
    tenant = f"notify-{unique}"
    bouncing_customer = str(uuid.uuid4())
    refuse_mail_to(
        engine_for(settings.dsn), bouncing_customer, error_code="MAILBOX_FULL", reason="mailbox full"
    )
    consumer = build_consumer(
        settings, NOTIFICATION, group_id=f"notification-{unique}", scope=TenantScope(prefix=tenant)
    )
    relay = build_outbox_relay(settings, "notification")
    stop = threading.Event()
    threads = [
        threading.Thread(target=consumer.run, args=(stop,), daemon=True),
        threading.Thread(target=relay.run, args=(stop,), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        producer = producer_from(settings, service="order", fallback=False)
        created = {}
        for customer in (bouncing_customer, str(uuid.uuid4())):
            order = OrderRequest(
                tenant_id=tenant,
                order_id=str(uuid.uuid4()),
                customer_id=customer,
                plan_id="vm-standard-2",
                region="eu-west-1",
                amount_minor=1000,
            )
            envelope = schemas.new_event(
                "order.created",
                order.created_payload(),
                tenant_id=tenant,
                correlation_id=uuid.UUID(order.correlation_id),
                actor=schemas.Actor(id="tests", type=schemas.ActorType.SYSTEM),
                producer="order-service",
            )
            producer.publish(envelope)
            created[customer] = envelope
        reports = _reports(settings, f"reader-{unique}", tenant, want=4)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)

    outcome = {(str(r.data.trigger_event_id), r.data.channel): r for r in reports}
    assert len(reports) == 4, [(r.event_type, r.data.channel) for r in reports]
    bounced = outcome[(str(created[bouncing_customer].event_id), "email")]
    assert bounced.event_type == "notification.failed"
    assert bounced.data.error_code == "MAILBOX_FULL" and bounced.data.reason == "mailbox full"
    assert bounced.causation_id == created[bouncing_customer].event_id
    assert outcome[(str(created[bouncing_customer].event_id), "in_app")].event_type == "notification.sent"
    other = [customer for customer in created if customer != bouncing_customer][0]
    assert {outcome[(str(created[other].event_id), ch)].event_type for ch in ("email", "in_app")} == {
        "notification.sent"
    }
