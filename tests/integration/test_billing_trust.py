"""Billing under attack, on the real Kafka and PostgreSQL with the real consumer: a validly signed
event of another tenant naming an order must not refund or invoice it, and a captured record sent
again after its idempotency key expired must not capture or refund a second time."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

import schemas
from core.db import engine_for
from core.settings import Settings
from messaging.errors import ErrorClass
from services.billing.gateway import clear_gateway_faults, inject_gateway_fault
from services.billing.subscriptions import SUBSCRIPTIONS as BILLING
from services.billing.tables import invoices, ledger, payments, psp_operations, refunds
from tests.support.hostile_support import (
    committed_past,
    dead_letter_of,
    emitted,
    example,
    expire_keys,
    publish,
    resend,
    signed_event,
)
from tests.support.messaging_support import isolated, running
from workers.consumers import build_consumer

pytestmark = pytest.mark.stack

def _emitted(settings: Settings, tenant: str) -> list[schemas.Envelope]:
    return emitted(settings, "billing", tenant)


def _effects(settings: Settings, order_id: uuid.UUID) -> dict[str, list[tuple]]:
    """Everything Billing and its gateway recorded for one order."""
    with engine_for(settings.dsn).connect() as conn:

        def rows(*columns) -> list[tuple]:
            table = columns[0].table
            return sorted(
                tuple(r) for r in conn.execute(select(*columns).where(table.c.order_id == order_id))
            )

        return {
            "payments": rows(payments.c.payment_id, payments.c.tenant_id, payments.c.status),
            "psp": rows(psp_operations.c.operation_id, psp_operations.c.kind, psp_operations.c.amount_minor),
            "ledger": rows(ledger.c.kind, ledger.c.ref_id, ledger.c.amount_minor, ledger.c.tenant_id),
            "refunds": rows(refunds.c.refund_id, refunds.c.status),
            "invoices": rows(invoices.c.invoice_id, invoices.c.tenant_id),
        }


def _confirmed(tenant: str, order_id: uuid.UUID, payment_id: uuid.UUID, flow: uuid.UUID) -> schemas.Envelope:
    return signed_event(
        "order.payment-confirmed",
        example("order.payment-confirmed", orderId=str(order_id), paymentId=str(payment_id)),
        tenant_id=tenant,
        correlation_id=flow,
    )


def _refund(tenant: str, order_id: uuid.UUID, payment_id: uuid.UUID, flow: uuid.UUID) -> schemas.Envelope:
    return signed_event(
        "billing.refund-requested",
        example(
            "billing.refund-requested",
            orderId=str(order_id),
            paymentId=str(payment_id),
            idempotencyKey=f"refund:{order_id}:{payment_id}",
        ),
        tenant_id=tenant,
        correlation_id=flow,
    )


def test_cross_tenant_event_refunds_and_invoices_nothing(stack, settings: Settings, unique: str) -> None:
    s = isolated(settings, unique)
    tenant_a, tenant_b = f"a-{unique}", f"b-{unique}"
    group = f"billing-{unique}"
    order_a, payment_a, flow_a = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    consumer = build_consumer(s, BILLING, group_id=group)
    with running(consumer):
        own = publish(s, _confirmed(tenant_a, order_a, payment_a, flow_a))
        committed_past(s, group, own)
        before = _effects(s, order_a)
        assert [status for *_, status in before["payments"]] == ["captured"] and len(before["psp"]) == 1
        # Tenant B asks for a refund of A's payment and invoices A's order, from a flow of its own.
        refund = publish(s, _refund(tenant_b, order_a, payment_a, uuid.uuid4()))
        invoice = publish(
            s,
            signed_event(
                "order.fulfilled",
                example("order.fulfilled", orderId=str(order_a)),
                tenant_id=tenant_b,
                correlation_id=uuid.uuid4(),
            ),
        )
        committed_past(s, group, refund)
        committed_past(s, group, invoice)

    for hostile in (refund, invoice):
        letter = dead_letter_of(s, hostile)
        assert letter.error_class is ErrorClass.PERMISSION, letter.reason
        assert tenant_a in letter.reason and tenant_b in letter.reason, letter.reason
    assert _effects(s, order_a) == before
    assert _emitted(s, tenant_b) == []


def test_replay_after_key_expiry_captures_and_refunds_once(stack, settings: Settings, unique: str) -> None:
    """Order 1's capture was declined; a day later the card would work and its captured record comes
    again: nothing is captured (the order's one capture attempt was made). Order 2 was captured and
    refunded; both records come again: no second capture, no second refund — and Billing re-sends
    the outcomes it sent the first time (same event ids)."""
    s = isolated(settings, unique)
    tenant, group = f"a-{unique}", f"billing-{unique}"
    engine = engine_for(s.dsn)
    declined_order, refunded_order = uuid.uuid4(), uuid.uuid4()
    inject_gateway_fault(engine, declined_order, "capture", "permanent")
    flow, payment = uuid.uuid4(), uuid.uuid4()
    records = {
        "declined": _confirmed(tenant, declined_order, uuid.uuid4(), uuid.uuid4()),
        "captured": _confirmed(tenant, refunded_order, payment, flow),
        "refund": _refund(tenant, refunded_order, payment, flow),
    }
    consumer = build_consumer(s, BILLING, group_id=group)
    with running(consumer):
        sent = {}
        for name, envelope in records.items():  # one after another: a refund waits for its capture
            sent[name] = publish(s, envelope)
            committed_past(s, group, sent[name])
        before = {order: _effects(s, order) for order in (declined_order, refunded_order)}
        outcomes = {(e.event_type, e.event_id) for e in _emitted(s, tenant)}
        assert [status for *_, status in before[declined_order]["payments"]] == ["failed"]
        assert before[declined_order]["psp"] == [] and before[declined_order]["ledger"] == []
        assert sorted(kind for _, kind, _ in before[refunded_order]["psp"]) == ["capture", "refund"]
        clear_gateway_faults(engine, declined_order)
        for name, envelope in records.items():
            assert expire_keys(engine, envelope.event_id) >= 1
            committed_past(s, group, resend(s, sent[name]))

    assert {order: _effects(s, order) for order in (declined_order, refunded_order)} == before
    assert {(e.event_type, e.event_id) for e in _emitted(s, tenant)} == outcomes
