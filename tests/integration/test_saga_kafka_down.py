"""The saga never moves on an event that is only in a local file: with Kafka down it waits at its step.

A broker of this test's own (own state dir, ports and env segment; the shared broker is never touched:
other engineers' tests run against it) serves the saga worker, the bridge and the Provisioning and
Billing consumers; Temporal and PostgreSQL are the shared ones. The order is placed and waits for its
payment; the broker is stopped and the payment confirmed, so `order.payment-confirmed` must be published
while no broker answers. The step's local publish (`local-steps`) fails once and hands the step to the
regular publish activity, which must fail and be retried by Temporal (visible as the pending
activity's attempt and last failure) while the saga stays at `awaiting-payment` and nothing is
written to the file spool; once the broker is back the saga goes on to `delivered`, its events are on
Kafka for real (timeline offsets, records on the topics), and the spool is still empty.

Each attempt against a dead broker takes the producer's delivery timeout (30 s) to fail, so the
outage lasts until the activity's second attempt has started (~70 s: the local try, then the
activity's first attempt), the shortest that proves a retry.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from cloud_factory.stack.kafka import KafkaComponent
from core.settings import Settings
from services.order.api import pay_order
from services.order.flow import read_flow
from tests.support.private_broker import start_broker
from tests.support.saga_harness import SagaHarness
from workflows.contracts import step_event_id
from workflows.order_fulfillment import SA_ORDER_STEP, OrderFulfillmentWorkflow

pytestmark = pytest.mark.stack

WAITING_STEP = "awaiting-payment"
OUTAGE_LIMIT_S = 150  # attempt 2 starts after ~70 s: 2 × (5 s topic check + 30 s delivery timeout) + 1 s




def _spooled(directory: Path) -> list[str]:
    """Everything in the spool directory but its lock file (a day file, a cursor, a .failed file)."""
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if p.name != ".lock")


async def _where(handle: WorkflowHandle) -> tuple[str, str, str | None, object]:
    """(status, step) from the `status` query, the `OrderStep` search attribute, the description."""
    snapshot = await handle.query(OrderFulfillmentWorkflow.status)
    description = await handle.describe()
    return snapshot.status, snapshot.step, description.typed_search_attributes.get(SA_ORDER_STEP), description


async def _started_attempts(handle: WorkflowHandle, step: str) -> list[int]:
    """From the history: the attempt each `publish_event` of `step` completed on (0: a local try that
    failed, before the first activity of the step was scheduled)."""
    scheduled: set[int] = set()
    attempts = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_local_activity" and marker.HasField("failure") and not scheduled:
                attempts.append(0)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            request = json.loads(attributes.input.payloads[0].data)
            if attributes.activity_type.name == "publish_event" and request["step"] == step:
                scheduled.add(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            if attributes.scheduled_event_id in scheduled:
                attempts.append(attributes.attempt)
    return attempts


async def test_saga_waits_at_its_step_while_kafka_is_down_and_never_spools(
    private_broker: tuple[Settings, KafkaComponent], settings: Settings, tmp_path: Path
) -> None:
    s, kafka = private_broker
    spool = s.spool_dir
    assert spool == tmp_path / "fallback" and spool != settings.spool_dir  # never the developer's spool
    since_ms = int(time.time() * 1000) - 1000
    async with SagaHarness(s, consumers=("bridge", "provisioning", "billing")) as harness:
        placed = await harness.place(pay=False)
        handle, workflow_id = placed.handle, placed.order.workflow_id
        try:
            # Kafka up: order.created goes out for real and the saga waits for its payment.
            deadline = time.monotonic() + 60
            while (where := await _where(handle))[:3] != ("awaiting_payment", WAITING_STEP, WAITING_STEP):
                assert time.monotonic() < deadline, f"the saga never reached {WAITING_STEP}: {where[:3]}"
                await asyncio.sleep(0.2)
            created = [e for e in await handle.query(OrderFulfillmentWorkflow.timeline)
                       if e.direction == "out"]
            assert [(e.event_type, e.offset is not None and e.offset >= 0) for e in created] == [
                ("order.created", True)]

            await asyncio.to_thread(kafka.stop)  # the broker goes away …
            assert not kafka.probe()
            await pay_order(harness.client, workflow_id)  # … right when the saga must publish the payment

            # While it is down the publish activity fails and is retried; the saga stays at its step
            # and nothing reaches the spool.
            outage_started = time.monotonic()
            deadline = outage_started + OUTAGE_LIMIT_S
            while True:
                status, step, search_step, description = await _where(handle)
                assert (status, step, search_step) == ("awaiting_payment", WAITING_STEP, WAITING_STEP), (
                    f"the saga moved on with Kafka down: status {status}, step {step}, "
                    f"OrderStep {search_step}, spool {_spooled(spool)}")
                assert _spooled(spool) == [], f"the saga spooled while Kafka was down: {_spooled(spool)}"
                published = [e.event_type for e in await handle.query(OrderFulfillmentWorkflow.timeline)
                             if e.direction == "out"]
                assert published == ["order.created"], published
                pending = [a for a in description.raw_description.pending_activities
                           if a.activity_type.name == "publish_event"]
                assert len(pending) <= 1, pending
                if pending and pending[0].attempt > 1:
                    retried = pending[0]
                    break
                assert time.monotonic() < deadline, (
                    f"no retry of the publish activity within {OUTAGE_LIMIT_S} s: {pending}")
                await asyncio.sleep(0.5)
            failure = retried.last_failure
            assert failure.message and "order.payment-confirmed" in failure.message, failure
            assert failure.application_failure_info.type == "BrokerUnavailableError", failure

            await asyncio.to_thread(start_broker, kafka)  # the broker is back: the saga goes on
            result = await asyncio.wait_for(handle.result(), 150)
            assert result.status == "delivered", result
            status, step, search_step, _ = await _where(handle)  # (queries need the worker: still inside)
            assert (status, step, search_step) == ("delivered", "done", "done")
            timeline = await handle.query(OrderFulfillmentWorkflow.timeline)
        finally:
            try:
                if (await handle.describe()).status.name == "RUNNING":
                    await handle.terminate("test over")
            except Exception:  # noqa: BLE001 - cleanup must not hide the test's own failure
                pass

    # Every event of the saga is on Kafka (a spooled delivery would carry partition and offset -1) …
    out = [e for e in timeline if e.direction == "out"]
    assert [e.event_type for e in out] == [
        "order.created", "order.payment-confirmed", "order.provisioning-started", "order.fulfilled",
        "order.service-delivered"]
    assert all(e.partition is not None and e.partition >= 0 and e.offset is not None and e.offset >= 0
               for e in out), out
    # … the payment-confirmed record is there, with the step's own event id (a retry re-sends the same) …
    records = await asyncio.to_thread(read_flow, s, placed.order.correlation_id, ["order.payment-confirmed"],
                                      since_ms)
    assert records and {str(r.envelope.event_id) for r in records} == {
        step_event_id(workflow_id, "payment-confirmed")}
    assert all(r.signature_ok for r in records)
    # … the history shows the failed local try, then the retry (the step's activity completed on a
    # later attempt) …
    attempts = await _started_attempts(handle, "payment-confirmed")
    assert attempts[0] == 0 and max(attempts) >= 2, attempts
    # … and nothing ever went through the spool.
    assert _spooled(spool) == [], _spooled(spool)
