"""SIGKILL the Temporal server mid-saga, start it again on its SQLite file: every saga completes once.

A Temporal dev server of this test's own (own SQLite file and ports; the shared server is never
touched) serves a real `cloud-factory worker all` subprocess; Kafka and PostgreSQL are the session's.
Five orders are placed and wait for their payment; three are paid right before the server is killed
with SIGKILL, so they are in flight (payment published, provisioning under way) when it dies, and two
are still waiting. The server is started again on the same SQLite file, the two are paid, and all five
must be delivered — each captured and invoiced exactly once, each resource created once, and exactly
one `order.fulfilled` event (one event id) per order on Kafka.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import select

from cloud_factory.stack.temporal import TemporalComponent
from core.db import engine_for
from core.settings import Settings
from core.temporal import connect_client
from services.billing.tables import invoices, psp_operations
from services.order.api import new_order, pay_order, place_order
from services.order.flow import read_flow
from services.provisioning.tables import cloud
from tests.support.private_temporal import kill_server, start_server
from tests.support.rows import rows_per_order
from tests.support.saga_harness import fast_timings
from tests.support.worker_process import isolation_env, start_workers, stop_workers
from workflows.contracts import step_event_id
from workflows.order_fulfillment import OrderFulfillmentWorkflow

pytestmark = pytest.mark.stack

ORDERS = 5
IN_FLIGHT = 3  # paid right before the kill; the others are paid once the server is back
RECOVERY_LIMIT_S = 120


async def _wait_awaiting_payment(client, workflow_ids: list[str]) -> None:
    deadline = time.monotonic() + 60
    for workflow_id in workflow_ids:
        handle = client.get_workflow_handle(workflow_id)
        while (await handle.query(OrderFulfillmentWorkflow.status)).step != "awaiting-payment":
            assert time.monotonic() < deadline, f"{workflow_id} never reached awaiting-payment"
            await asyncio.sleep(0.2)


async def test_temporal_server_sigkilled_mid_saga_and_restarted(
    private_temporal: tuple[Settings, TemporalComponent], settings: Settings, unique: str
) -> None:
    own, temporal = private_temporal
    engine = engine_for(settings.dsn)
    env = {**isolation_env(unique, f"r{unique}-"), "CF_TEMPORAL_PORT": str(own.temporal_port),
           "CF_TEMPORAL_UI_PORT": str(own.temporal_ui_port)}
    since_ms = int(time.time() * 1000) - 1000
    timings = fast_timings()
    timings.provisioning_timeout_s = 180  # the outage must not time the provisioning out
    orders = [new_order(f"r{unique}-{n}", "vm-standard-2", timings=timings) for n in range(ORDERS)]
    workers = start_workers(settings, env)
    try:
        client = await connect_client(own)
        for order in orders:
            await place_order(client, order, pay=False, task_queue=env["CF_ORDER_TASK_QUEUE"])
        ids = [order.workflow_id for order in orders]
        await _wait_awaiting_payment(client, ids)
        for workflow_id in ids[:IN_FLIGHT]:
            await pay_order(client, workflow_id)
        for workflow_id in ids[:IN_FLIGHT]:  # the kill lands mid-flight, not after the paid sagas ended
            description = await client.get_workflow_handle(workflow_id).describe()
            assert description.status is not None and description.status.name == "RUNNING", description.status
        await asyncio.to_thread(kill_server, temporal)
        assert not temporal.probe()
        await asyncio.sleep(3)  # the worker's polls and the in-flight activities' reports fail meanwhile
        await asyncio.to_thread(start_server, temporal)  # same SQLite file

        client = await connect_client(own)
        for workflow_id in ids[IN_FLIGHT:]:
            await pay_order(client, workflow_id)
        handles = [client.get_workflow_handle_for(OrderFulfillmentWorkflow.run, i) for i in ids]
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), RECOVERY_LIMIT_S)
        # Billing invoices on `order.fulfilled`, after the saga's result: the workers stay up for it.
        order_ids = [uuid.UUID(order.order_id) for order in orders]
        deadline = time.monotonic() + 60
        while 0 in rows_per_order(engine, invoices, order_ids).values() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        stop_workers(workers)

    assert [r.status for r in results] == ["delivered"] * ORDERS, results
    # Billing captured and invoiced each order once (a capture has no unique key: a second would show).
    assert rows_per_order(engine, psp_operations, order_ids,
                          psp_operations.c.kind == "capture") == dict.fromkeys(order_ids, 1)
    assert rows_per_order(engine, invoices, order_ids) == dict.fromkeys(order_ids, 1)
    # Provisioning created each resource once, and none was torn down.
    with engine.connect() as conn:
        made = conn.execute(select(cloud.c.order_id, cloud.c.name, cloud.c.deleted_at)
                            .where(cloud.c.order_id.in_(order_ids))).all()
    for order_id in order_ids:
        names = [row.name for row in made if row.order_id == order_id]
        assert names and len(names) == len(set(names)), (order_id, names)
    assert all(row.deleted_at is None for row in made), made
    # One order.fulfilled per order on Kafka: a re-sent record would carry the same step event id.
    for order in orders:
        records = await asyncio.to_thread(read_flow, settings, order.correlation_id, ["order.fulfilled"],
                                          since_ms)
        assert {str(r.envelope.event_id) for r in records} == {
            step_event_id(order.workflow_id, "fulfilled")}, (order.workflow_id, records)
        assert all(r.signature_ok for r in records)
