"""Notification under attack, on the real Kafka and PostgreSQL with the real consumer: a validly
signed event of another tenant naming a flow must not reach that flow's customer, and a captured
record sent again after its idempotency key expired must not send a second message."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from core.db import engine_for
from core.settings import Settings
from messaging.errors import ErrorClass
from services.common.emitter import service_event_id
from services.notification.subscriptions import SUBSCRIPTIONS as NOTIFICATION
from services.notification.tables import mail_log, notifications, outbox
from tests.support.hostile_support import (
    committed_past,
    dead_letter_of,
    example,
    expire_keys,
    publish,
    resend,
    signed_event,
)
from tests.support.messaging_support import isolated, running
from workers.consumers import build_consumer

pytestmark = pytest.mark.stack


def _report_ids(event_id: uuid.UUID) -> list[str]:
    """Every report id Notification could emit for `event_id` (sent or failed, per channel)."""
    return [
        str(service_event_id("notification", f"{event_id}/{channel}/{outcome}"))
        for channel in ("email", "in_app")
        for outcome in ("sent", "failed")
    ]


def _counts(settings: Settings, event_id: uuid.UUID) -> tuple[int, int, int]:
    """(message rows, mails the relay took, queued reports) caused by `event_id`."""
    with engine_for(settings.dsn).connect() as conn:
        rows = conn.execute(
            select(func.count()).select_from(notifications).where(notifications.c.event_id == event_id)
        ).scalar_one()
        mails = conn.execute(
            select(func.count()).select_from(mail_log).where(mail_log.c.reference.like(f"{event_id}/%"))
        ).scalar_one()
        reports = conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.event_id.in_(_report_ids(event_id)))
        ).scalar_one()
    return rows, mails, reports


def _order_created(tenant: str, customer: uuid.UUID, flow: uuid.UUID):
    return signed_event(
        "order.created",
        example("order.created", orderId=str(uuid.uuid4()), customerId=str(customer)),
        tenant_id=tenant,
        correlation_id=flow,
    )


def test_cross_tenant_event_reaches_nobody(stack, settings: Settings, unique: str) -> None:
    s = isolated(settings, unique)
    tenant_a, tenant_b = f"a-{unique}", f"b-{unique}"
    group = f"notification-{unique}"
    flow_a, customer_a = uuid.uuid4(), uuid.uuid4()
    consumer = build_consumer(s, NOTIFICATION, group_id=group)
    with running(consumer):
        own = publish(s, _order_created(tenant_a, customer_a, flow_a))
        committed_past(s, group, own)
        # Names no customer, so Notification would look the recipient up by the flow it names.
        hostile_event = signed_event(
            "provisioning.completed",
            example("provisioning.completed", orderId=str(uuid.uuid4())),
            tenant_id=tenant_b,
            correlation_id=flow_a,
        )
        hostile = publish(s, hostile_event)
        committed_past(s, group, hostile)

    letter = dead_letter_of(s, hostile)
    assert letter.error_class is ErrorClass.PERMISSION, letter.reason
    assert tenant_a in letter.reason and tenant_b in letter.reason, letter.reason
    assert _counts(s, hostile_event.event_id) == (0, 0, 0)
    with engine_for(s.dsn).connect() as conn:
        to_a = conn.execute(
            select(func.count()).select_from(mail_log).where(mail_log.c.recipient == str(customer_a))
        ).scalar_one()
    assert to_a == 1  # only tenant A's own order confirmation


def test_replay_after_key_expiry_sends_nothing_twice(stack, settings: Settings, unique: str) -> None:
    s = isolated(settings, unique)
    group = f"notification-{unique}"
    envelope = _order_created(f"a-{unique}", uuid.uuid4(), uuid.uuid4())
    consumer = build_consumer(s, NOTIFICATION, group_id=group)
    with running(consumer):
        first = publish(s, envelope)
        committed_past(s, group, first)
        assert _counts(s, envelope.event_id) == (2, 1, 2)
        assert expire_keys(engine_for(s.dsn), envelope.event_id) >= 1
        again = resend(s, first)  # the same bytes, a day later
        committed_past(s, group, again)

    assert _counts(s, envelope.event_id) == (2, 1, 2)
