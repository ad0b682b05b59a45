"""The saga's timeout paths and signal handling on Temporal's time-skipping test server.

Hours of waiting pass in milliseconds here, which the real stack cannot do. The activities are
local stand-ins registered under the real names: `publish_event` builds the real envelope (so every
payload the saga produces is checked against the contract) and records it instead of sending it; it
plays the answering services too, signalling the saga what `answers` says for an event type (the
answer's causation is the ask, as a real service's would be).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bridges.outbound import envelope_for, step_event_id
from core.temporal import DATA_CONVERTER
from workflows.contracts import (
    InboundEvent,
    IncidentClosure,
    IncidentRequest,
    OrderRequest,
    PaymentConfirmation,
    PublishedEvent,
    PublishRequest,
    SagaTimings,
)
from workflows.order_fulfillment import OrderFulfillmentWorkflow
from workflows.registry import SAGA_WORKFLOWS

TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"


Answer = Callable[[PublishRequest, str], list[InboundEvent]]


class Recorder:
    def __init__(self, client=None, answers: dict[str, Answer] | None = None) -> None:  # noqa: ANN001
        self.published: list[PublishRequest] = []
        self.incidents: list[IncidentRequest] = []
        self.closures: list[IncidentClosure] = []
        self.client = client
        self.answers = answers or {}

    @activity.defn(name="publish_event")
    async def publish_event(self, request: PublishRequest) -> PublishedEvent:
        envelope = envelope_for(request)  # the contract validates the payload here
        self.published.append(request)
        answer = self.answers.get(request.event_type)
        if answer is not None:
            handle = self.client.get_workflow_handle(request.workflow_id)
            for event in answer(request, str(envelope.event_id)):
                await handle.signal("domain_event", event)
        return PublishedEvent(str(envelope.event_id), envelope.event_type, "test", 0, len(self.published))

    @activity.defn(name="open_incident")
    def open_incident(self, request: IncidentRequest) -> None:
        self.incidents.append(request)

    @activity.defn(name="close_incident")
    def close_incident(self, closure: IncidentClosure) -> None:
        self.closures.append(closure)

    def activities(self) -> list[Callable[..., object]]:
        return [self.publish_event, self.open_incident, self.close_incident]

    def types(self) -> list[str]:
        return [request.event_type for request in self.published]


@pytest.fixture(scope="module")
async def env():
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=DATA_CONVERTER
    )
    # The saga upserts these; the dev server registers them at `stack up`, the test server here.
    await environment.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace="default",
            search_attributes={
                name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
                for name in ("CorrelationId", "TenantId", "OrderStatus", "OrderStep")
            },
        )
    )
    yield environment
    await environment.shutdown()


def _order(**timings: object) -> OrderRequest:
    return OrderRequest(
        tenant_id="unit",
        order_id=str(uuid.uuid4()),
        customer_id=str(uuid.uuid4()),
        plan_id="vm-standard-2",
        region="eu-west-1",
        amount_minor=2900,
        tax_minor=551,
        timings=SagaTimings(**timings),
    )


async def _run(env: WorkflowEnvironment, order: OrderRequest, recorder: Recorder, signals=()) -> object:
    queue = f"unit-{uuid.uuid4().hex[:8]}"

    async with Worker(
        env.client,
        task_queue=queue,
        workflows=list(SAGA_WORKFLOWS),
        activities=recorder.activities(),
        activity_executor=ThreadPoolExecutor(4),
    ):
        handle = await env.client.start_workflow(
            OrderFulfillmentWorkflow.run, order, id=order.workflow_id, task_queue=queue
        )
        for name, arg in signals:
            await handle.signal(name, arg)
        return await handle.result()


async def test_no_payment_in_time_fails_the_order_without_provisioning(env: WorkflowEnvironment) -> None:
    recorder = Recorder()
    result = await _run(env, _order(payment_timeout_s=3600), recorder)
    assert result.status == "payment_failed"
    assert recorder.types() == ["order.created", "order.failed"]
    assert recorder.published[-1].data.error_code == "PAYMENT_TIMEOUT"


async def test_provisioning_silence_times_out_and_every_unconfirmed_undo_needs_a_person(
    env: WorkflowEnvironment,
) -> None:
    recorder = Recorder()
    order = _order(provisioning_timeout_s=300, compensation_windows_s=[2, 4, 8, 16, 30, 30])
    result = await _run(env, order, recorder, [("confirm_payment", PaymentConfirmation(str(uuid.uuid4())))])
    assert result.status == "compensation_failed"
    types = recorder.types()
    assert types[:4] == [
        "order.created",
        "order.payment-confirmed",
        "order.provisioning-started",
        "order.compensation-started",
    ]
    # One ask per backoff window, each a distinct event; the refund is still tried after the
    # deprovisioning went unconfirmed; then the failure, the incident, the end.
    assert types[4:10] == ["order.cancelled"] * 6
    assert len({step_event_id(order.workflow_id, r.step) for r in recorder.published[4:10]}) == 6
    assert types[10:16] == ["billing.refund-requested"] * 6
    assert types[16:] == ["order.compensation-failed", "order.failed"]
    assert recorder.published[4].data.resources_to_release == []  # unknown: release whatever exists
    failed = recorder.published[16].data
    assert failed.failed_step == "deprovision_resources" and failed.completed_steps == []
    assert failed.failed_steps == ["deprovision_resources", "refund_payment"]
    assert envelope_for(recorder.published[16]).version == "v2"
    assert failed.reason.startswith("undos failed: deprovision_resources, refund_payment — ")
    assert [(i.failed_step, i.failed_steps, i.completed_steps) for i in recorder.incidents] == [
        ("deprovision_resources", ["deprovision_resources", "refund_payment"], [])
    ]
    assert recorder.published[-1].data.compensated is False


def _refunded(order: OrderRequest, causation: str | None, tenant_id: str | None = None) -> InboundEvent:
    return InboundEvent(
        event_id=str(uuid.uuid4()),
        event_type="billing.refund-completed",
        version="v1",
        data={
            "refundId": str(uuid.uuid4()),
            "orderId": order.order_id,
            "paymentId": str(uuid.uuid4()),
            "amount": {"amountMinor": 3451, "currency": "EUR"},
        },
        causation_id=causation,
        tenant_id=tenant_id or order.tenant_id,
    )


async def test_a_failed_undo_does_not_stop_the_next_one(env: WorkflowEnvironment) -> None:
    """Deprovisioning is never confirmed, the refund still goes out and is confirmed; both are named."""
    order = _order(provisioning_timeout_s=300, compensation_windows_s=[2, 4])
    recorder = Recorder(env.client,
                        {"billing.refund-requested": lambda request, ask: [_refunded(order, ask)]})
    result = await _run(env, order, recorder, [("confirm_payment", PaymentConfirmation(str(uuid.uuid4())))])
    assert result.status == "compensation_failed"
    assert recorder.types()[4:] == [
        "order.cancelled",
        "order.cancelled",
        "billing.refund-requested",
        "order.compensation-failed",
        "order.failed",
    ]
    failed = recorder.published[-2].data
    assert failed.failed_step == "deprovision_resources"
    assert failed.failed_steps == ["deprovision_resources"]
    assert failed.completed_steps == ["refund_payment"]
    assert failed.reason == "deprovisioning was never confirmed"
    assert [(i.failed_steps, i.completed_steps) for i in recorder.incidents] == [
        (["deprovision_resources"], ["refund_payment"])
    ]
    assert recorder.published[-1].data.stage == "provisioning"


async def test_replies_that_answer_no_open_ask_are_ignored_and_shown_in_the_timeline(
    env: WorkflowEnvironment,
) -> None:
    """A refund confirmation sent before any refund was asked (even with the id the ask will have), one of
    another tenant, and one answering the wrong ask: none counts. The refund is never confirmed."""
    order = _order(provisioning_timeout_s=300, compensation_windows_s=[2, 4])
    first_refund_ask = step_event_id(order.workflow_id, "refund-requested")
    early = _refunded(order, str(first_refund_ask))
    started = step_event_id(order.workflow_id, "provisioning-started")
    late = {
        "billing.refund-requested": lambda request, ask: [
            _refunded(order, ask, tenant_id="another-tenant"),
            _refunded(order, str(started)),
            InboundEvent(str(uuid.uuid4()), "provisioning.deprovisioned", "v1",
                         {"orderId": order.order_id, "customerId": order.customer_id, "resources": [],
                          "reason": "order_cancelled"}, ask, tenant_id=order.tenant_id),
        ]
    }
    recorder = Recorder(env.client, late)
    queue = f"unit-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=queue, workflows=list(SAGA_WORKFLOWS),
                      activities=recorder.activities(),
                      activity_executor=ThreadPoolExecutor(4)):
        handle = await env.client.start_workflow(OrderFulfillmentWorkflow.run, order, id=order.workflow_id,
                                                 task_queue=queue)
        # The early reply must reach a saga that has started (it published order.created); sent before
        # its first workflow task it would be refused for that reason instead, however fast the machine.
        deadline = time.monotonic() + 60
        while not recorder.published:
            assert time.monotonic() < deadline, "the saga never published order.created"
            await asyncio.sleep(0.05)
        await handle.signal("confirm_payment", PaymentConfirmation(str(uuid.uuid4())))
        await handle.signal("domain_event", early)
        result = await handle.result()
        timeline = await handle.query(OrderFulfillmentWorkflow.timeline)
    assert result.status == "compensation_failed"
    failed = recorder.published[-2].data
    assert failed.failed_steps == ["deprovision_resources", "refund_payment"]
    assert failed.completed_steps == []
    ignored = [(entry.event_type, entry.ignored) for entry in timeline if entry.ignored]
    assert ignored[0] == ("billing.refund-completed",
                          f"its causationId {first_refund_ask} is not an open ask of this saga")
    reasons = [why for _, why in ignored]
    assert any("tenant another-tenant is not the saga's tenant unit" in why for why in reasons)
    assert any(f"a late answer to order.provisioning-started {started}, which the saga no longer waits on"
               in why for why in reasons)
    assert any("provisioning.deprovisioned does not answer billing.refund-requested" in why
               for why in reasons)
    assert not [entry for entry in timeline if entry.direction == "in" and not entry.ignored]


async def test_a_redelivered_event_is_ignored_and_the_first_outcome_wins(env: WorkflowEnvironment) -> None:
    order = _order(provisioning_timeout_s=600)
    completed = InboundEvent(
        event_id=str(uuid.uuid4()),
        event_type="provisioning.completed",
        version="v3",
        causation_id=None,
        data={
            "orderId": order.order_id,
            "attempts": 1,
            "endpoints": [],
            "resources": [
                {"resourceId": str(uuid.uuid4()), "kind": "vm", "region": "eu-west-1", "name": "vps"}
            ],
        },
    )
    failed = InboundEvent(
        event_id=str(uuid.uuid4()),
        event_type="provisioning.failed",
        version="v1",
        data={
            "orderId": order.order_id,
            "region": "eu-west-1",
            "errorCode": "LATE",
            "reason": "late",
            "retryable": False,
            "partialResources": [],
        },
    )

    def answers(request: PublishRequest, ask: str) -> list[InboundEvent]:
        completed.causation_id = failed.causation_id = ask
        return [completed, completed, failed]

    recorder = Recorder(env.client, {"order.provisioning-started": answers})
    result = await _run(env, order, recorder, [("confirm_payment", PaymentConfirmation(str(uuid.uuid4())))])
    assert result.status == "delivered"
    assert recorder.types()[-2:] == ["order.fulfilled", "order.service-delivered"]


def test_bad_timings_are_rejected_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="compensation_windows_s"):
        SagaTimings(compensation_windows_s=[])
    with pytest.raises(ValueError, match="timeouts"):
        SagaTimings(payment_timeout_s=0)


async def test_a_reply_delivered_with_the_start_is_not_applied_before_the_saga_runs(
    env: WorkflowEnvironment,
) -> None:
    """A fake completion that reaches the saga in its very first task (before `run` began) must not
    satisfy the provisioning wait later: with no answer at all, provisioning times out."""
    order = _order(provisioning_timeout_s=300, compensation_windows_s=[2])
    fake = InboundEvent(str(uuid.uuid4()), "provisioning.completed", "v3",
                        {"orderId": order.order_id, "attempts": 1, "endpoints": [],
                         "resources": [{"resourceId": str(uuid.uuid4()), "kind": "vm", "region": "eu-west-1",
                                        "name": "vps"}]},
                        str(step_event_id(order.workflow_id, "provisioning-started")),
                        tenant_id=order.tenant_id)
    recorder = Recorder()
    queue = f"unit-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=queue, workflows=list(SAGA_WORKFLOWS),
                      activities=recorder.activities(),
                      activity_executor=ThreadPoolExecutor(4)):
        handle = await env.client.start_workflow(OrderFulfillmentWorkflow.run, order, id=order.workflow_id,
                                                 task_queue=queue, start_signal="domain_event",
                                                 start_signal_args=[fake])
        await handle.signal("confirm_payment", PaymentConfirmation(str(uuid.uuid4())))
        result = await handle.result()
        timeline = await handle.query(OrderFulfillmentWorkflow.timeline)
    assert result.status == "compensation_failed"  # timed out, nothing confirmed the undos
    assert "order.fulfilled" not in recorder.types()
    assert [entry.ignored for entry in timeline if entry.direction == "in"] == [
        "the saga has not started: no ask is open"]
