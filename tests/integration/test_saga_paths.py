"""Every path of the order saga end to end on the real Kafka, Temporal and PostgreSQL.

One harness (saga worker, bridge, Provisioning, Billing, Notification — isolated by task queue,
consumer groups and tenant prefix) serves the module. Each test asserts on the workflow's result,
search attributes and queries, on the signed events of the flow as they sit on the topics (order,
causation chain, signatures) and on the rows each service owns. A saga whose undo fails waits for a
person (its `OrderIncident`): those tests assert where it stopped, then decide as a person would
(`retry` once the cause is fixed, or `resolve` with a note) and assert how it ends.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

import schemas
from core.settings import Settings
from messaging.wiring import producer_from
from services.billing.gateway import clear_gateway_faults, inject_gateway_fault
from services.billing.tables import ledger, payments, psp_operations, refunds
from services.notification.tables import notifications
from services.order.api import PlacedOrder
from services.order.flow import FlowRecord, read_dlq, read_flow
from services.order.incident_desk import resolve_incident, retry_incident
from services.order.tables import incidents
from services.provisioning.handler import count_live_resources
from services.provisioning.simulator import clear_faults, held_since, inject_fault, release_fault
from services.provisioning.tables import orders as provisioning_orders
from services.provisioning.tables import resources
from tests.support.messaging_support import assert_topic_exists
from tests.support.saga_harness import SagaHarness
from tests.support.saga_incidents import incident_open, parked_on_incident
from workflows.contracts import OrderResult, SagaTimings
from workflows.incident import OrderIncidentWorkflow
from workflows.metadata import incident_workflow_id
from workflows.order_fulfillment import OrderFulfillmentWorkflow

pytestmark = pytest.mark.stack

ORDER_EVENTS = [e.event_type for e in schemas.catalog.published_by("order")]
PROVISIONING_EVENTS = [e.event_type for e in schemas.catalog.published_by("provisioning")]
BILLING_EVENTS = [e.event_type for e in schemas.catalog.published_by("billing")]
ALL_FLOW_EVENTS = ORDER_EVENTS + PROVISIONING_EVENTS + BILLING_EVENTS


@pytest.fixture(scope="module")
async def harness(stack, settings: Settings) -> AsyncIterator[SagaHarness]:
    async with SagaHarness(settings) as running:
        yield running


async def _finish(placed, timeout: float = 90) -> OrderResult:
    return await asyncio.wait_for(placed.handle.result(), timeout)


async def _search_attributes(placed) -> dict[str, str]:
    description = await placed.handle.describe()
    fields = description.raw_description.workflow_execution_info.search_attributes.indexed_fields
    return {key: json.loads(payload.data) for key, payload in fields.items()}


def _flow(settings: Settings, placed, since_ms: int) -> list[FlowRecord]:
    return read_flow(settings, placed.order.correlation_id, ALL_FLOW_EVENTS, since_ms)


def _types(records: list[FlowRecord], prefix: str = "") -> list[str]:
    return [r.envelope.event_type for r in records if r.envelope.event_type.startswith(prefix)]


def _assert_chain(records: list[FlowRecord], placed) -> None:
    """Signed, one tenant and correlation, and every causation points at an earlier event of the flow."""
    ids = {r.envelope.event_id for r in records}
    assert records, "no events on the topics"
    for record in records:
        envelope = record.envelope
        assert record.signature_ok, f"{envelope.event_type} has a bad signature"
        assert envelope.tenant_id == placed.order.tenant_id
        assert str(envelope.correlation_id) == placed.order.correlation_id
        if envelope.event_type == "order.created":
            assert envelope.causation_id is None
        else:
            assert envelope.causation_id in ids, f"{envelope.event_type} caused by an unknown event"
    assert len(ids) == len(records), "an event was published twice"


def _count(settings: Settings, harness: SagaHarness, statement) -> int:
    with harness.engine.connect() as conn:
        return conn.execute(statement).scalar_one()


async def _wait_rows(harness: SagaHarness, statement, expected: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while True:
        with harness.engine.connect() as conn:
            got = conn.execute(statement).scalar_one()
        if got >= expected or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.2)


def _publish_sentinel(settings: Settings, tenant_id: str, key: str) -> schemas.Envelope:
    """A customer's cancellation of another order (a flow of its own) sent with `key`, so it lands on
    the partition of that flow's `order.cancelled` records, after them. It is only a notice: Provisioning
    records a tombstone and answers nothing, Notification tells its customer. Once a consumer handled it,
    that consumer handled every record of the flow published before it (one partition, in order)."""
    sentinel = schemas.new_event(
        "order.cancelled",
        {"orderId": str(uuid.uuid4()), "customerId": str(uuid.uuid4()), "reason": "customer_request",
         "resourcesToRelease": []},
        tenant_id=tenant_id,
        correlation_id=uuid.uuid4(),
        actor=schemas.Actor(id="order-service", type=schemas.ActorType.SERVICE),
        producer="order-service",
    )
    producer = producer_from(settings, service="order", fallback=False)
    value = schemas.encode(sentinel)
    headers = producer.keyring.sign(value, event_type=sentinel.event_type) + [
        ("x-cf-event-type", sentinel.event_type.encode()), ("x-cf-event-id", str(sentinel.event_id).encode())]
    producer.publish_raw(schemas.topic_for(sentinel.event_type, env=settings.env), key=key.encode(),
                         value=value, headers=headers)
    return sentinel


def _now_ms() -> int:
    return int(time.time() * 1000) - 1000


async def test_success_path(harness: SagaHarness, settings: Settings) -> None:
    since = _now_ms()
    placed = await harness.place("ok")
    result = await _finish(placed)
    order_id = uuid.UUID(placed.order.order_id)

    assert result.status == "delivered"
    attrs = await _search_attributes(placed)
    assert attrs["OrderStatus"] == "delivered" and attrs["OrderStep"] == "done"
    assert (
        attrs["CorrelationId"] == placed.order.correlation_id and attrs["TenantId"] == placed.order.tenant_id
    )
    snapshot = await placed.handle.query(OrderFulfillmentWorkflow.status)
    assert snapshot.compensation_stack == [] and [r.name for r in snapshot.resources] == [
        "network",
        "disk",
        "vps",
    ]
    ledger_rows = select(func.count()).select_from(ledger).where(ledger.c.order_id == order_id)
    assert await _wait_rows(harness, ledger_rows, 2) == 2  # capture + invoice

    records = _flow(settings, placed, since)
    _assert_chain(records, placed)
    assert _types(records, "order.") == [
        "order.created",
        "order.payment-confirmed",
        "order.provisioning-started",
        "order.fulfilled",
        "order.service-delivered",
    ]
    assert _types(records, "provisioning.") == [
        "provisioning.started",
        *["provisioning.resource-created"] * 3,
        "provisioning.completed",
    ]
    by_type = {r.envelope.event_type: r.envelope for r in records}
    assert by_type["order.fulfilled"].causation_id == by_type["provisioning.completed"].event_id
    assert by_type["provisioning.completed"].causation_id == by_type["order.provisioning-started"].event_id
    assert "billing.payment-captured" in by_type and "billing.invoice-created" in by_type
    assert by_type["order.service-delivered"].data.console_url.startswith("https://")

    with harness.engine.connect() as conn:
        rows = conn.execute(
            select(resources.c.name, resources.c.state)
            .where(resources.c.order_id == order_id)
            .order_by(resources.c.seq)
        ).all()
        assert [tuple(r) for r in rows] == [("network", "created"), ("disk", "created"), ("vps", "created")]
        assert (
            conn.execute(select(payments.c.status).where(payments.c.order_id == order_id)).scalar_one()
            == "captured"
        )
    assert count_live_resources(harness.engine, order_id) == 3
    delivered = (
        select(func.count())
        .select_from(notifications)
        .where(
            notifications.c.correlation_id == uuid.UUID(placed.order.correlation_id),
            notifications.c.event_type == "order.service-delivered",
        )
    )
    assert await _wait_rows(harness, delivered, 2) == 2  # email + in-app


async def test_provisioning_failure_compensates_in_reverse(harness: SagaHarness, settings: Settings) -> None:
    since = _now_ms()
    placed = await harness.place("fail", fail_at="vps")
    result = await _finish(placed)
    order_id = uuid.UUID(placed.order.order_id)

    assert result.status == "compensated"
    attrs = await _search_attributes(placed)
    assert attrs["OrderStatus"] == "compensated"
    snapshot = await placed.handle.query(OrderFulfillmentWorkflow.status)
    assert snapshot.completed_compensations == ["deprovision_resources", "refund_payment"]
    assert snapshot.compensation_stack == []

    records = _flow(settings, placed, since)
    _assert_chain(records, placed)
    assert _types(records, "order.") == [
        "order.created",
        "order.payment-confirmed",
        "order.provisioning-started",
        "order.compensation-started",
        "order.cancelled",
        "order.compensation-completed",
        "order.failed",
    ]
    sequence = _types(records)
    # Reverse order: the resources go first, then the money; the newest resource is deleted first.
    assert sequence.index("provisioning.deprovisioned") < sequence.index("billing.refund-requested")
    deleted = [
        r.envelope.data.resource.name
        for r in records
        if r.envelope.event_type == "provisioning.resource-deleted"
    ]
    assert deleted == ["disk", "network"]
    by_type = {r.envelope.event_type: r.envelope for r in records}
    assert by_type["provisioning.failed"].data.error_code == "CAPACITY_EXHAUSTED"
    assert [s.value for s in by_type["order.compensation-started"].data.steps] == [
        "deprovision_resources",
        "refund_payment",
    ]
    assert by_type["order.failed"].data.compensated is True
    assert by_type["order.compensation-completed"].data.refunded.amount_minor == 2900 + 551

    assert count_live_resources(harness.engine, order_id) == 0
    with harness.engine.connect() as conn:
        assert conn.execute(
            select(refunds.c.status).where(refunds.c.order_id == order_id)
        ).scalars().all() == ["completed"]
        assert (
            conn.execute(
                select(func.count())
                .select_from(psp_operations)
                .where(psp_operations.c.order_id == order_id, psp_operations.c.kind == "refund")
            ).scalar_one()
            == 1
        )
        assert (
            conn.execute(
                select(func.sum(ledger.c.amount_minor)).where(ledger.c.order_id == order_id)
            ).scalar_one()
            == 0
        )  # captured and refunded


async def test_payment_failure_ends_without_provisioning(harness: SagaHarness, settings: Settings) -> None:
    since = _now_ms()
    placed = await harness.place("pay", fail_at="payment")
    result = await _finish(placed)

    assert result.status == "payment_failed"
    assert (await _search_attributes(placed))["OrderStatus"] == "payment_failed"
    records = _flow(settings, placed, since)
    _assert_chain(records, placed)
    assert _types(records) == ["order.created", "order.failed"]
    failed = records[-1].envelope.data
    assert failed.stage.value == "payment" and failed.compensated is False
    with harness.engine.connect() as conn:
        order_id = uuid.UUID(placed.order.order_id)
        assert (
            conn.execute(
                select(func.count()).select_from(payments).where(payments.c.order_id == order_id)
            ).scalar_one()
            == 0
        )
        assert (
            conn.execute(
                select(func.count()).select_from(resources).where(resources.c.order_id == order_id)
            ).scalar_one()
            == 0
        )


async def test_customer_cancel_during_provisioning_compensates(
    harness: SagaHarness, settings: Settings
) -> None:
    since = _now_ms()
    placed = await harness.place("cancel", pay=False)
    # The disk's create waits until released, so the cancel lands while provisioning is provably under
    # way, however slow the machine (no window to hit).
    inject_fault(harness.engine, placed.order.order_id, "disk", "hold", delay_ms=120_000)
    from services.order.api import cancel_order, pay_order

    await pay_order(harness.client, placed.order.workflow_id)
    deadline = time.monotonic() + 60
    while held_since(harness.engine, placed.order.order_id, "disk") is None:
        assert time.monotonic() < deadline, "provisioning never reached the disk"
        await asyncio.sleep(0.05)
    assert (await placed.handle.query(OrderFulfillmentWorkflow.status)).status == "provisioning"
    await cancel_order(harness.client, placed.order.workflow_id, note="changed my mind")
    # The signal is in the saga's history now, ahead of anything provisioning will answer.
    release_fault(harness.engine, placed.order.order_id, "disk")
    result = await _finish(placed)
    order_id = uuid.UUID(placed.order.order_id)

    assert result.status == "cancelled"
    assert (await _search_attributes(placed))["OrderStatus"] == "cancelled"
    records = _flow(settings, placed, since)
    _assert_chain(records, placed)
    assert _types(records, "order.") == [
        "order.created",
        "order.payment-confirmed",
        "order.provisioning-started",
        "order.compensation-started",
        "order.cancelled",
        "order.compensation-completed",
    ]
    cancelled = next(r.envelope.data for r in records if r.envelope.event_type == "order.cancelled")
    assert cancelled.reason.value == "customer_request" and cancelled.note == "changed my mind"
    assert [r.name for r in cancelled.resources_to_release] == ["vps", "disk", "network"]
    deleted = [
        r.envelope.data.resource.name
        for r in records
        if r.envelope.event_type == "provisioning.resource-deleted"
    ]
    assert deleted == ["vps", "disk", "network"]
    assert count_live_resources(harness.engine, order_id) == 0
    with harness.engine.connect() as conn:
        assert conn.execute(
            select(refunds.c.status).where(refunds.c.order_id == order_id)
        ).scalars().all() == ["completed"]


async def test_cancel_before_payment_publishes_only_the_cancellation(
    harness: SagaHarness, settings: Settings
) -> None:
    since = _now_ms()
    placed = await harness.place("early", pay=False)
    from services.order.api import cancel_order

    await cancel_order(harness.client, placed.order.workflow_id)
    result = await _finish(placed)
    assert result.status == "cancelled"
    # Provisioning records the cancellation (a tombstone) and, since it is only a notice, answers
    # nothing: an answer would reach a finished saga and be dead-lettered.
    tombstone = (
        select(func.count())
        .select_from(provisioning_orders)
        .where(
            provisioning_orders.c.order_id == uuid.UUID(placed.order.order_id),
            provisioning_orders.c.state == "cancelled",
        )
    )
    assert await _wait_rows(harness, tombstone, 1) == 1
    # Proof that Provisioning handled the cancellation and sent nothing: a sentinel behind it on its
    # partition is handled (its tombstone written) only after the cancellation's handler returned —
    # and an answer is published (acknowledged) inside that handler.
    sentinel = _publish_sentinel(settings, placed.order.tenant_id, placed.order.correlation_id)
    sentinel_tombstone = (
        select(func.count())
        .select_from(provisioning_orders)
        .where(provisioning_orders.c.order_id == sentinel.data.order_id,
               provisioning_orders.c.state == "cancelled")
    )
    assert await _wait_rows(harness, sentinel_tombstone, 1, timeout=60) == 1, (
        "Provisioning never handled the sentinel published after the cancellation")
    for event_type in PROVISIONING_EVENTS + BILLING_EVENTS:
        assert_topic_exists(settings, schemas.topic_for(event_type, env=settings.env))
    records = [r for r in _flow(settings, placed, since) if r.envelope.event_id != sentinel.event_id]
    _assert_chain(records, placed)
    assert _types(records, "order.") == ["order.created", "order.cancelled"]
    assert _types(records, "billing.") == [] and _types(records, "provisioning.") == []


async def _assert_needs_a_person(
    harness: SagaHarness, placed: PlacedOrder, *, owed: list[str], attempt: int = 1
) -> str:
    """Waits for a person on its incident `attempt` (not ended), shown as such in the Web UI, with `owed`
    undos still on the stack, and doing nothing else meanwhile. Returns the incident id."""
    assert harness.client is not None
    outcome, ticket = await incident_open(harness.client, placed.handle, attempt)
    incident_id = incident_workflow_id(placed.order.workflow_id, attempt)
    assert outcome.status == "compensation_failed" and outcome.result is None
    assert outcome.incident_id == incident_id and outcome.needs_a_person
    assert [str(step) for step in ticket.failed_steps] == owed and ticket.attempt == attempt
    await parked_on_incident(placed.handle, incident_id)
    attrs = await _search_attributes(placed)
    assert attrs["OrderStatus"] == "compensation_failed" and attrs["OrderStep"] == "manual-review"
    snapshot = await placed.handle.query(OrderFulfillmentWorkflow.status)
    assert snapshot.incident_id == incident_id
    stack = await placed.handle.query(OrderFulfillmentWorkflow.compensation_stack)
    assert [entry.step for entry in stack] == owed  # still owed
    return incident_id


def _closed_incidents(harness: SagaHarness, placed) -> list[tuple]:
    """(failed step, state, resolution, note, closed by, closed at set) of the saga's incident rows."""
    with harness.engine.connect() as conn:
        rows = conn.execute(
            select(incidents).where(incidents.c.workflow_id == placed.order.workflow_id)
        ).mappings()
        return [(r["failed_step"], r["state"], r["resolution"], r["note"], r["closed_by"],
                 r["closed_at"] is not None) for r in rows]


async def _decision_of(harness: SagaHarness, incident_id: str):  # noqa: ANN202 - an IncidentDecision
    assert harness.client is not None
    return await harness.client.get_workflow_handle_for(OrderIncidentWorkflow.run, incident_id).result()


async def test_refund_failure_is_a_compensation_failure_with_an_incident(
    harness: SagaHarness, settings: Settings
) -> None:
    """The declined refund opens the incident and the saga waits, publishing nothing more; a person
    refunds by hand and resolves it with a note: the saga ends `resolved_manually`, `order.failed`
    carries the note, the incident row is closed with it."""
    since = _now_ms()
    placed = await harness.place("refund", fail_at="refund")

    incident_id = await _assert_needs_a_person(harness, placed, owed=["refund_payment"])
    records = _flow(settings, placed, since)  # final: the saga is parked, every publish acknowledged
    _assert_chain(records, placed)
    assert _types(records, "order.")[-1] == "order.compensation-failed"
    assert "order.failed" not in _types(records)  # not before a person decided
    by_type = {r.envelope.event_type: r.envelope for r in records}
    failed = by_type["order.compensation-failed"].data
    assert failed.failed_step.value == "refund_payment" and failed.requires_manual_action
    assert [s.value for s in failed.completed_steps] == ["deprovision_resources"]
    assert by_type["order.compensation-failed"].causation_id == by_type["billing.refund-failed"].event_id
    with harness.engine.connect() as conn:
        rows = (
            conn.execute(select(incidents).where(incidents.c.workflow_id == placed.order.workflow_id))
            .mappings()
            .all()
        )
        assert [(r["failed_step"], r["state"]) for r in rows] == [("refund_payment", "open")]
        assert conn.execute(
            select(refunds.c.status).where(refunds.c.order_id == uuid.UUID(placed.order.order_id))
        ).scalars().all() == ["failed"]

    note = "refunded by bank transfer, ticket OPS-42"
    assert harness.client is not None
    await resolve_incident(harness.client, incident_id, note=note, by="ops-anna")
    result = await _finish(placed)
    assert result.status == "resolved_manually"
    attrs = await _search_attributes(placed)
    assert attrs["OrderStatus"] == "resolved_manually" and attrs["OrderStep"] == "done"
    assert (await placed.handle.query(OrderFulfillmentWorkflow.status)).incident_id is None
    decision = await _decision_of(harness, incident_id)
    assert (decision.action, decision.note, decision.by) == ("resolve", note, "ops-anna")

    records = _flow(settings, placed, since)
    _assert_chain(records, placed)
    assert _types(records, "order.")[-2:] == ["order.compensation-failed", "order.failed"]
    by_type = {r.envelope.event_type: r.envelope for r in records}
    ended = by_type["order.failed"]
    assert ended.causation_id == by_type["order.compensation-failed"].event_id
    assert ended.data.error_code == "COMPENSATION_FAILED" and ended.data.compensated is False
    assert note in ended.data.reason and "ops-anna" in ended.data.reason
    assert _closed_incidents(harness, placed) == [
        ("refund_payment", "closed", "resolved", note, "ops-anna", True)]
    assert _refund_statuses(harness, placed) == ["failed"]  # the saga moved no money: the person did


async def test_transient_provider_errors_are_retried_to_success(
    harness: SagaHarness, settings: Settings
) -> None:
    since = _now_ms()
    placed = await harness.place("flaky", fail_at="transient")
    result = await _finish(placed)
    assert result.status == "delivered"
    records = _flow(settings, placed, since)
    completed = next(r.envelope.data for r in records if r.envelope.event_type == "provisioning.completed")
    assert completed.attempts == 3
    assert count_live_resources(harness.engine, uuid.UUID(placed.order.order_id)) == 3


async def test_event_for_no_running_workflow_is_dead_lettered(
    harness: SagaHarness, settings: Settings
) -> None:
    since = _now_ms()
    from workflows.contracts import correlation_id_for, order_workflow_id

    tenant, order_id = harness.tenant("ghost"), uuid.uuid4()
    correlation = correlation_id_for(order_workflow_id(tenant, str(order_id)))
    envelope = schemas.new_event(
        "provisioning.failed",
        {
            "orderId": order_id,
            "region": "eu-west-1",
            "errorCode": "CAPACITY_EXHAUSTED",
            "reason": "test",
            "retryable": False,
            "partialResources": [],
        },
        tenant_id=tenant,
        correlation_id=correlation,
        actor=schemas.Actor(id="tests", type=schemas.ActorType.SYSTEM),
        producer="provisioning-service",
    )
    producer_from(settings, service="provisioning").publish(envelope)
    deadline = time.monotonic() + 60
    found: dict[str, str] | None = None
    while found is None:
        assert time.monotonic() < deadline, "the orphan event never reached the DLQ"
        for _topic, value, headers in read_dlq(settings, "provisioning.failed", since):
            if str(envelope.event_id).encode() in value:
                found = headers
        await asyncio.sleep(0.5)
    assert found["x-cf-dlq-error-class"] == "not_found"
    assert "no running workflow" in found["x-cf-dlq-reason"]


async def test_a_re_sent_cancellation_notifies_the_customer_once(
    harness: SagaHarness, settings: Settings
) -> None:
    """The saga asks Provisioning again after each backoff window; the customer hears of it once."""
    from workflows.contracts import correlation_id_for, order_workflow_id

    tenant, order_id, customer = harness.tenant("resend"), str(uuid.uuid4()), str(uuid.uuid4())
    correlation = correlation_id_for(order_workflow_id(tenant, order_id))
    producer = producer_from(settings, service="order")
    asks = [
        schemas.new_event(
            "order.cancelled",
            {
                "orderId": order_id,
                "customerId": customer,
                "reason": "out_of_capacity",
                "resourcesToRelease": [],
            },
            tenant_id=tenant,
            correlation_id=correlation,
            actor=schemas.Actor(id="order-service", type=schemas.ActorType.SERVICE),
            producer="order-service",
        )
        for _ in range(2)
    ]
    for ask in asks:
        producer.publish(ask)
    of_cancellation = (
        notifications.c.correlation_id == uuid.UUID(correlation),
        notifications.c.event_type == "order.cancelled",
    )
    rows = select(func.count()).select_from(notifications).where(*of_cancellation)
    assert await _wait_rows(harness, rows, 2) == 2
    # The second ask was handled (and skipped) once Notification handled a sentinel sent behind it on
    # the same partition: its messages commit in the handler's transaction, after the second ask's.
    sentinel = _publish_sentinel(settings, tenant, correlation)
    sentinel_rows = (
        select(func.count())
        .select_from(notifications)
        .where(notifications.c.correlation_id == sentinel.correlation_id,
               notifications.c.event_type == "order.cancelled")
    )
    assert await _wait_rows(harness, sentinel_rows, 2, timeout=60) == 2, (
        "Notification never told the customer of the sentinel published after the second ask")
    with harness.engine.connect() as conn:
        told = conn.execute(
            select(notifications.c.event_id, notifications.c.channel).where(*of_cancellation)
        ).all()
    assert sorted(channel for _, channel in told) == ["email", "in_app"]
    assert {event_id for event_id, _ in told} == {asks[0].event_id}


# Short backoff: two asks per undo (3 s, then 6 s) keep the unconfirmed paths under ~10 s each.
_SHORT_UNDO = SagaTimings(payment_timeout_s=60, provisioning_timeout_s=60, compensation_windows_s=[3.0, 6.0])


def _first_of_each(records: list[FlowRecord]) -> list[FlowRecord]:
    """Provisioning answers each re-ask with the same events (same ids): keep each event once."""
    seen: set[uuid.UUID] = set()
    unique, repeated = [], set()
    for record in records:
        if record.envelope.event_id in seen:
            repeated.add(record.envelope.event_type)
        else:
            seen.add(record.envelope.event_id)
            unique.append(record)
    assert all(t.startswith("provisioning.") for t in repeated), f"re-sent by the saga: {repeated}"
    return unique


def _incident_rows(harness: SagaHarness, placed) -> list[tuple]:
    with harness.engine.connect() as conn:
        rows = conn.execute(
            select(incidents).where(incidents.c.workflow_id == placed.order.workflow_id)
        ).mappings()
        return [(r["failed_step"], r["failed_steps"], r["completed_steps"], r["state"]) for r in rows]


def _refund_statuses(harness: SagaHarness, placed) -> list[str]:
    with harness.engine.connect() as conn:
        return list(
            conn.execute(
                select(refunds.c.status).where(refunds.c.order_id == uuid.UUID(placed.order.order_id))
            ).scalars()
        )


async def test_an_unconfirmed_deprovision_still_refunds_and_needs_a_person(
    harness: SagaHarness, settings: Settings
) -> None:
    """Deleting the disk is refused (never confirmed); the refund is still asked for and done. Once the
    provider deletes again, a person's retry releases the resources and the saga ends `compensated`."""
    since = _now_ms()
    placed = await harness.place("undo1", fail_at="deprovision", timings=_SHORT_UNDO)

    incident_id = await _assert_needs_a_person(harness, placed, owed=["deprovision_resources"])
    snapshot = await placed.handle.query(OrderFulfillmentWorkflow.status)
    assert snapshot.completed_compensations == ["refund_payment"]

    records = _first_of_each(_flow(settings, placed, since))
    _assert_chain(records, placed)
    asked_and_failed = [
        "order.created",
        "order.payment-confirmed",
        "order.provisioning-started",
        "order.compensation-started",
        "order.cancelled",
        "order.cancelled",
        "order.compensation-failed",
    ]
    assert _types(records, "order.") == asked_and_failed  # and no order.failed: a person decides
    sequence = _types(records)
    assert "provisioning.deprovisioned" not in sequence
    assert sequence.index("provisioning.deprovision-failed") < sequence.index("billing.refund-requested")
    assert sequence.index("billing.refund-completed") < sequence.index("order.compensation-failed")
    by_type = {r.envelope.event_type: r.envelope for r in records}
    failed = by_type["order.compensation-failed"].data
    assert failed.failed_step.value == "deprovision_resources" and failed.requires_manual_action
    assert [s.value for s in failed.completed_steps] == ["refund_payment"]
    assert failed.reason == "deprovisioning was never confirmed"
    assert by_type["order.compensation-failed"].causation_id == by_type["billing.refund-completed"].event_id

    assert _incident_rows(harness, placed) == [
        ("deprovision_resources", ["deprovision_resources"], ["refund_payment"], "open")
    ]
    assert _refund_statuses(harness, placed) == ["completed"]
    order_id = uuid.UUID(placed.order.order_id)
    assert count_live_resources(harness.engine, order_id) == 2  # network, disk

    clear_faults(harness.engine, order_id)  # the provider deletes again
    assert harness.client is not None
    await retry_incident(harness.client, incident_id, by="ops-ben")
    result = await _finish(placed)
    assert result.status == "compensated"
    assert (await _search_attributes(placed))["OrderStatus"] == "compensated"
    snapshot = await placed.handle.query(OrderFulfillmentWorkflow.status)
    assert snapshot.completed_compensations == ["refund_payment", "deprovision_resources"]
    assert snapshot.compensation_stack == [] and snapshot.incident_id is None
    assert (await _decision_of(harness, incident_id)).action == "retry"

    records = _first_of_each(_flow(settings, placed, since))
    _assert_chain(records, placed)
    assert _types(records, "order.") == [
        *asked_and_failed,
        "order.cancelled",  # the retry's ask, answered at once
        "order.compensation-completed",
        "order.failed",
    ]
    by_type = {r.envelope.event_type: r.envelope for r in records}
    retry_ask = [r.envelope for r in records if r.envelope.event_type == "order.cancelled"][-1]
    assert retry_ask.causation_id == by_type["order.compensation-failed"].event_id
    assert by_type["provisioning.deprovisioned"].causation_id == retry_ask.event_id
    completed = by_type["order.compensation-completed"]
    assert completed.causation_id == by_type["provisioning.deprovisioned"].event_id
    assert [s.value for s in by_type["order.compensation-completed"].data.completed_steps] == [
        "refund_payment", "deprovision_resources"]
    assert completed.data.refunded.amount_minor == placed.order.total.amount_minor
    ended = by_type["order.failed"]
    assert ended.data.compensated is True and ended.causation_id == completed.event_id
    assert count_live_resources(harness.engine, order_id) == 0
    assert _refund_statuses(harness, placed) == ["completed"]  # refunded once, in the first round
    assert _closed_incidents(harness, placed) == [
        ("deprovision_resources", "closed", "retried", None, "ops-ben", True)]


async def test_every_undo_is_tried_and_every_failure_is_named(
    harness: SagaHarness, settings: Settings
) -> None:
    """Deprovisioning is never confirmed and the refund is declined: both are tried, both named. A retry
    with nothing fixed fails the same way and opens the next incident; once both are fixed, the retry
    releases the resources and refunds once, under a new key (the declined refund moved no money)."""
    since = _now_ms()
    placed = await harness.place("undo2", fail_at="deprovision", timings=_SHORT_UNDO)
    inject_gateway_fault(harness.engine, placed.order.order_id, "refund")  # asked for ≥ 9 s later

    owed = ["deprovision_resources", "refund_payment"]
    first = await _assert_needs_a_person(harness, placed, owed=owed)
    records = _first_of_each(_flow(settings, placed, since))
    _assert_chain(records, placed)
    assert _types(records, "order.")[-1] == "order.compensation-failed"
    assert "order.failed" not in _types(records)
    sequence = _types(records)
    assert sequence.index("provisioning.deprovision-failed") < sequence.index("billing.refund-requested")
    by_type = {r.envelope.event_type: r.envelope for r in records}
    failed = by_type["order.compensation-failed"].data
    assert failed.failed_step.value == "deprovision_resources" and list(failed.completed_steps) == []
    # Published as v2 (not a v1 record upcast on read), listing every failed undo in order.
    [published] = [r for r in records if r.envelope.event_type == "order.compensation-failed"]
    assert published.headers["ce_dataschema"] == schemas.dataschema_uri("order.compensation-failed", "v2")
    assert [s.value for s in failed.failed_steps] == ["deprovision_resources", "refund_payment"]
    assert failed.reason.startswith("undos failed: deprovision_resources, refund_payment — ")
    assert "refund failed:" in failed.reason
    assert by_type["order.compensation-failed"].causation_id == by_type["billing.refund-failed"].event_id

    assert _incident_rows(harness, placed) == [
        ("deprovision_resources", ["deprovision_resources", "refund_payment"], [], "open")
    ]
    assert _refund_statuses(harness, placed) == ["failed"]

    assert harness.client is not None
    await retry_incident(harness.client, first)  # nothing fixed: both undos fail again
    second = await _assert_needs_a_person(harness, placed, owed=owed, attempt=2)
    assert second == incident_workflow_id(placed.order.workflow_id, 2) != first
    assert (await _decision_of(harness, first)).action == "retry"
    records = _first_of_each(_flow(settings, placed, since))
    _assert_chain(records, placed)
    again = [r.envelope for r in records if r.envelope.event_type == "order.compensation-failed"]
    assert len(again) == 2 and _types(records, "order.")[-1] == "order.compensation-failed"
    assert "order.failed" not in _types(records)
    assert [s.value for s in again[1].data.failed_steps] == owed
    declined = [r.envelope for r in records if r.envelope.event_type == "billing.refund-failed"]
    assert len(declined) == 2 and again[1].causation_id == declined[1].event_id
    assert _refund_statuses(harness, placed) == ["failed", "failed"]  # the retry asked under a new key
    assert [row[3] for row in _incident_rows(harness, placed)] == ["open"]

    order_id = uuid.UUID(placed.order.order_id)
    clear_faults(harness.engine, order_id)  # the provider deletes again
    clear_gateway_faults(harness.engine, order_id)  # and the card takes refunds
    await retry_incident(harness.client, second)
    result = await _finish(placed)
    assert result.status == "compensated"
    records = _first_of_each(_flow(settings, placed, since))
    _assert_chain(records, placed)
    # The second retry's asks, newest undo first (release, then refund), then the end.
    assert _types(records)[-1] == "order.failed"
    assert _types(records, "order.")[-3:] == [
        "order.cancelled", "order.compensation-completed", "order.failed"]
    sequence = _types(records)
    assert sequence.index("provisioning.deprovisioned") < sequence.index("billing.refund-completed")
    by_type = {r.envelope.event_type: r.envelope for r in records}
    assert by_type["order.failed"].data.compensated is True
    assert [s.value for s in by_type["order.compensation-completed"].data.completed_steps] == owed
    with harness.engine.connect() as conn:
        by_key = dict(conn.execute(
            select(refunds.c.idempotency_key, refunds.c.status).where(refunds.c.order_id == order_id)).all())
        refunded = conn.execute(
            select(func.count()).select_from(ledger)
            .where(ledger.c.order_id == order_id, ledger.c.kind == "refund")
        ).scalar_one()
        balance = conn.execute(
            select(func.sum(ledger.c.amount_minor)).where(ledger.c.order_id == order_id)).scalar_one()
    workflow_id = placed.order.workflow_id
    assert by_key == {f"refund-{workflow_id}": "failed", f"refund-{workflow_id}-retry1": "failed",
                      f"refund-{workflow_id}-retry2": "completed"}
    assert refunded == 1 and balance == 0  # refunded exactly once: captured and paid back
    assert count_live_resources(harness.engine, order_id) == 0
    assert _closed_incidents(harness, placed) == [
        ("deprovision_resources", "closed", "retried", None, "operator", True)]


async def test_provisioning_timeout_with_nothing_created_compensates_promptly(
    stack, settings: Settings
) -> None:
    """Provisioning never got to create anything: it confirms the release of nothing on the first
    ask, so the saga refunds and ends `compensated` instead of failing after every backoff window."""
    since = _now_ms()
    kinds = ("bridge", "provisioning-cancels", "billing", "notification")
    timings = SagaTimings(
        payment_timeout_s=60, provisioning_timeout_s=3, compensation_windows_s=[8.0, 16.0, 30.0]
    )
    async with SagaHarness(settings, consumers=kinds) as own:
        placed = await own.place("timeout", timings=timings)
        result = await _finish(placed, timeout=45)
        snapshot = await placed.handle.query(OrderFulfillmentWorkflow.status)
        order_id = uuid.UUID(placed.order.order_id)

        assert result.status == "compensated"
        assert snapshot.completed_compensations == ["deprovision_resources", "refund_payment"]
        records = _flow(settings, placed, since)
        _assert_chain(records, placed)
        assert _types(records, "order.") == [
            "order.created",
            "order.payment-confirmed",
            "order.provisioning-started",
            "order.compensation-started",
            "order.cancelled",  # one ask: confirmed within the first window
            "order.compensation-completed",
            "order.failed",
        ]
        assert _types(records, "provisioning.") == ["provisioning.deprovisioned"]
        by_type = {r.envelope.event_type: r.envelope for r in records}
        deprovisioned = by_type["provisioning.deprovisioned"]
        assert deprovisioned.data.resources == [] and deprovisioned.data.reason.value == "compensation"
        assert deprovisioned.causation_id == by_type["order.cancelled"].event_id
        assert by_type["order.failed"].data.error_code == "PROVISIONING_TIMEOUT"
        assert by_type["order.failed"].data.compensated is True
        assert _refund_statuses(own, placed) == ["completed"]
        assert _incident_rows(own, placed) == []
        with own.engine.connect() as conn:
            state = conn.execute(
                select(provisioning_orders.c.state).where(provisioning_orders.c.order_id == order_id)
            ).scalar_one()
        assert state == "cancelled"  # a late provisioning request will create nothing
        assert count_live_resources(own.engine, order_id) == 0
