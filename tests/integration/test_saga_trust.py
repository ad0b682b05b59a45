"""Hostile answers to the saga on the real stack: who may say what, and only in answer to its own asks.

An attacker here has plain confluent-kafka and one service's valid key (Notification's, or even the
rightful publisher's), never the saga's state. Each test ends with the right saga outcome, the hostile
record in its DLQ with its class and reason, and nothing of it in the saga. A forged refund
confirmation cannot spare the saga its incident: it still waits for a person, who then resolves it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select
from temporalio import workflow
from temporalio.worker import Worker

import schemas
from activities.incidents import IncidentActivities
from activities.publishing import PublishingActivities
from bridges.outbound import OutboundBridge
from core.db import engine_for
from core.settings import Settings
from messaging.wiring import keyring_from, producer_from
from services.billing.tables import ledger
from services.order.api import PlacedOrder
from services.order.flow import read_dlq
from services.order.incident_desk import resolve_incident
from tests.support.saga_harness import SagaHarness
from tests.support.saga_incidents import incident_open, parked_on_incident
from workflows.contracts import (
    OrderRequest,
    OrderResult,
    correlation_id_for,
    order_workflow_id,
    step_event_id,
)
from workflows.order_fulfillment import OrderFulfillmentWorkflow

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
async def harness(stack, settings: Settings) -> AsyncIterator[SagaHarness]:
    async with SagaHarness(settings) as running:
        yield running


def _now_ms() -> int:
    return int(time.time() * 1000) - 1000


def _forge(settings: Settings, placed: PlacedOrder, event_type: str, data: dict, *, signer: str,
           producer: str, causation: str | None, tenant: str | None = None,
           correlation: str | None = None) -> schemas.Envelope:
    """Sign with `signer`'s real key and send with the raw producer, as an attacker holding it would."""
    envelope = schemas.new_event(
        event_type, data, tenant_id=tenant or placed.order.tenant_id,
        correlation_id=uuid.UUID(correlation or placed.order.correlation_id),
        causation_id=uuid.UUID(causation) if causation else None,
        actor=schemas.Actor(id=producer, type=schemas.ActorType.SERVICE), producer=producer)
    value = schemas.encode(envelope)
    headers = keyring_from(settings, signer).sign(value)
    producer_from(settings, fallback=False).publish_raw(
        schemas.topic_for(event_type, env=settings.env), key=str(envelope.correlation_id).encode(),
        value=value, headers=headers)
    return envelope


def _refund_completed(placed: PlacedOrder) -> dict:
    return {"refundId": str(uuid.uuid4()), "orderId": placed.order.order_id, "paymentId": str(uuid.uuid4()),
            "amount": {"amountMinor": placed.order.total.amount_minor, "currency": "EUR"}}


def _fake_vps(placed: PlacedOrder) -> dict:
    return {"orderId": placed.order.order_id, "attempts": 1, "endpoints": [],
            "resources": [{"resourceId": str(uuid.uuid4()), "kind": "vm", "region": "eu-west-1",
                           "name": "vps"}]}


async def _dead_letter(settings: Settings, event_type: str, envelope: schemas.Envelope, since: int,
                       timeout: float = 60) -> dict[str, str]:
    """The DLQ headers of `envelope`'s record as the bridge dead-lettered it (other consumers of the
    type, such as Notification, may dead-letter it too, for their own reasons), waiting for it."""
    deadline = time.monotonic() + timeout
    while True:
        for _topic, value, headers in read_dlq(settings, event_type, since):
            if (str(envelope.event_id).encode() in value
                    and headers["x-cf-dlq-group"].startswith("order-bridge")):
                return headers
        assert time.monotonic() < deadline, f"the hostile {event_type} never reached the DLQ"
        await asyncio.sleep(0.5)


async def _finish(placed: PlacedOrder, timeout: float = 120):  # noqa: ANN202
    return await asyncio.wait_for(placed.handle.result(), timeout)


async def _needs_a_person_then_resolved(harness: SagaHarness, placed: PlacedOrder) -> None:
    """The declined refund still opened the incident (the forgery changed nothing); a person resolves it."""
    assert harness.client is not None
    outcome, _ticket = await incident_open(harness.client, placed.handle)
    assert outcome.status == "compensation_failed" and outcome.result is None
    assert outcome.incident_id is not None
    await parked_on_incident(placed.handle, outcome.incident_id)
    await resolve_incident(harness.client, outcome.incident_id, note="refunded by hand after the forgery")
    assert (await _finish(placed)).status == "resolved_manually"


async def _applied_inbound(placed: PlacedOrder) -> list[str]:
    timeline = await placed.handle.query(OrderFulfillmentWorkflow.timeline)
    return [entry.event_id for entry in timeline if entry.direction == "in" and not entry.ignored]


async def test_a_refund_confirmation_signed_by_notification_cannot_compensate_a_declined_refund(
    harness: SagaHarness, settings: Settings
) -> None:
    since = _now_ms()
    placed = await harness.place("forged-refund", fail_at="refund")  # the real refund is declined
    forged = _forge(settings, placed, "billing.refund-completed", _refund_completed(placed),
                    signer="notification", producer="notification-service", causation=None)
    headers = await _dead_letter(settings, "billing.refund-completed", forged, since)
    assert headers["x-cf-dlq-error-class"] == "permission"
    assert "published by billing, but the record is signed by notification" in headers["x-cf-dlq-reason"]
    await _needs_a_person_then_resolved(harness, placed)
    assert str(forged.event_id) not in await _applied_inbound(placed)
    with harness.engine.connect() as conn:
        entries = conn.execute(select(ledger.c.kind).where(
            ledger.c.order_id == uuid.UUID(placed.order.order_id))).scalars().all()
    assert "refund" not in entries


async def test_a_fake_vps_from_a_non_publisher_cannot_deliver_a_failed_order(
    harness: SagaHarness, settings: Settings
) -> None:
    since = _now_ms()
    placed = await harness.place("forged-vps", fail_at="vps")
    forged = _forge(settings, placed, "provisioning.completed", _fake_vps(placed), signer="notification",
                    producer="provisioning-service",
                    causation=step_event_id(placed.order.workflow_id, "provisioning-started"))
    headers = await _dead_letter(settings, "provisioning.completed", forged, since)
    assert headers["x-cf-dlq-error-class"] == "permission"
    assert "signed by notification" in headers["x-cf-dlq-reason"]
    result = await _finish(placed)
    assert result.status == "compensated"
    assert str(forged.event_id) not in await _applied_inbound(placed)


async def test_a_validly_signed_refund_confirmation_before_any_refund_was_asked_is_refused(
    harness: SagaHarness, settings: Settings
) -> None:
    """Even Billing's own key (a bug, a stolen key, a replay) cannot answer an ask the saga never made:
    the attacker guesses the id the saga's first refund ask will have, and still loses."""
    since = _now_ms()
    placed = await harness.place("early-refund", fail_at="refund")
    forged = _forge(settings, placed, "billing.refund-completed", _refund_completed(placed), signer="billing",
                    producer="billing-service",
                    causation=step_event_id(placed.order.workflow_id, "refund-requested"))
    headers = await _dead_letter(settings, "billing.refund-completed", forged, since)
    assert headers["x-cf-dlq-error-class"] == "inconsistency"
    assert "is not a request" in headers["x-cf-dlq-reason"]
    assert placed.order.workflow_id in headers["x-cf-dlq-reason"]
    await _needs_a_person_then_resolved(harness, placed)
    assert str(forged.event_id) not in await _applied_inbound(placed)


async def test_a_reply_caused_by_another_sagas_request_or_of_another_tenant_is_refused(
    harness: SagaHarness, settings: Settings
) -> None:
    since = _now_ms()
    first = await harness.place("asker", fail_at="vps")
    waiting = await harness.place("waiting", pay=False)  # asks Provisioning nothing yet
    borrowed = _forge(settings, waiting, "provisioning.completed", _fake_vps(waiting), signer="provisioning",
                      producer="provisioning-service",
                      causation=step_event_id(first.order.workflow_id, "provisioning-started"))
    headers = await _dead_letter(settings, "provisioning.completed", borrowed, since)
    assert headers["x-cf-dlq-error-class"] == "inconsistency"
    assert "waits on: nothing" in headers["x-cf-dlq-reason"]
    # Tenant B's event naming tenant A's flow (A's correlation and order id, B's tenant).
    other_tenant = harness.tenant("intruder")
    crossed = _forge(settings, first, "provisioning.completed", _fake_vps(first), signer="provisioning",
                     producer="provisioning-service", tenant=other_tenant,
                     causation=step_event_id(first.order.workflow_id, "provisioning-started"))
    headers = await _dead_letter(settings, "provisioning.completed", crossed, since)
    assert headers["x-cf-dlq-error-class"] == "inconsistency"
    assert (f"is not the flow of {order_workflow_id(other_tenant, first.order.order_id)}"
            in headers["x-cf-dlq-reason"])
    assert (correlation_id_for(order_workflow_id(other_tenant, first.order.order_id))
            != first.order.correlation_id)
    assert (await _finish(first)).status == "compensated"
    assert await _applied_inbound(waiting) == []
    await waiting.handle.terminate("test over")


@workflow.defn(name="OrderFulfillmentWorkflow", sandboxed=False)
class _StartedBeforeTheCheck(OrderFulfillmentWorkflow):
    """A saga started before `trusted-replies`: it registers no asks and checks nothing."""

    @workflow.run
    async def run(self, order: OrderRequest) -> OrderResult:
        return await super().run(order)

    def _trusting(self) -> bool:
        return False


async def test_a_saga_started_before_the_check_still_gets_its_answers_through_the_bridge(
    stack, settings: Settings
) -> None:
    """At the upgrade, sagas in flight have no asks; the bridge must not refuse their genuine answers."""
    async with SagaHarness(settings, saga=False) as earlier:
        assert earlier.client is not None
        engine = engine_for(settings.dsn)
        producer = producer_from(settings, service="order", fallback=False)
        publishing = PublishingActivities(OutboundBridge(producer))
        async with Worker(earlier.client, task_queue=earlier.task_queue, workflows=[_StartedBeforeTheCheck],
                          activities=[publishing.publish_event, IncidentActivities(engine).open_incident],
                          activity_executor=ThreadPoolExecutor(8)):
            placed = await earlier.place("earlier")
            result = await _finish(placed)
            book = await placed.handle.query(OrderFulfillmentWorkflow.asks)
    assert result.status == "delivered"
    assert book.checking is False and book.open == {}
