"""Three saga-worker replicas on one task queue, one killed -9 mid-saga: every saga ends as its
scenario says, and nothing happens twice.

The workers run as real `cloud-factory worker` processes (isolated task queue, consumer groups and
tenant prefix): `all` (a saga worker beside every service) and two `saga` replicas. Twenty orders
are placed at once — delivered, failing at the VPS (compensated), payment declined — and the kill
lands once provisioning is under way for some and the replica to kill has run part of a saga still
open; the sagas it had run go on from their histories on the other two (their histories show both).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType

from cloud_factory.faults import place_failing
from core.db import engine_for
from core.settings import Settings
from core.temporal import connect_client
from services.billing.tables import invoices, psp_operations, refunds
from services.order.api import new_order
from services.provisioning.tables import cloud
from tests.support.saga_harness import fast_timings
from tests.support.worker_process import (
    isolation_env,
    launch_workers,
    log_problems,
    stop_workers,
    wait_healthy,
)

pytestmark = pytest.mark.stack

SCENARIOS = {None: 14, "vps": 3, "payment": 3}  # fail_at → orders
EXPECTED = {None: "delivered", "vps": "compensated", "payment": "payment_failed"}
KILL_AFTER = 5  # orders with a resource at the provider


def _count(engine, statement) -> int:
    with engine.connect() as conn:
        return conn.execute(statement).scalar_one()


async def _worked_on(client, workflow_id: str) -> set[str]:
    """The identities of the workers that completed a workflow task of this saga."""
    identities = set()
    async for history_event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if history_event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            identities.add(history_event.workflow_task_completed_event_attributes.identity)
    return identities


async def _open_sagas_worked_on_by(client, placed, identity_prefix: str) -> int:
    """How many sagas still open had a workflow task completed by the worker `identity_prefix`."""
    count = 0
    for saga in placed:
        if (await saga.handle.describe()).close_time is None and any(
                identity.startswith(identity_prefix)
                for identity in await _worked_on(client, saga.handle.id)):
            count += 1
    return count


async def test_saga_replica_killed_mid_saga(stack, settings: Settings, unique: str,
                                            tmp_path: Path) -> None:
    engine = engine_for(settings.dsn)
    prefix = f"s{unique}-"
    env = isolation_env(unique, prefix)
    logs = {name: tmp_path / f"{name}.log" for name in ("services", "killed", "kept")}
    processes: dict[str, subprocess.Popen] = {}
    orders = []
    for fail_at, n in SCENARIOS.items():
        for _ in range(n):
            order = new_order(f"{prefix}acme", "vm-standard-2", timings=fast_timings())
            orders.append((fail_at, order))
    try:
        processes["services"] = launch_workers(env, "all", log=logs["services"])
        processes["killed"] = launch_workers(env, "saga", log=logs["killed"])
        processes["kept"] = launch_workers(env, "saga", log=logs["kept"])
        for process in processes.values():
            wait_healthy(settings, process)
        client = await connect_client(settings)
        placed = await asyncio.gather(*(
            place_failing(client, engine, order, fail_at, task_queue=env["CF_ORDER_TASK_QUEUE"])
            for fail_at, order in orders))
        ids = [uuid.UUID(order.order_id) for _, order in orders]
        provisioning = select(func.count(cloud.c.order_id.distinct())).where(cloud.c.order_id.in_(ids))
        deadline = time.monotonic() + 90
        while _count(engine, provisioning) < KILL_AFTER:
            assert time.monotonic() < deadline, f"provisioning never started for {KILL_AFTER} orders"
            await asyncio.sleep(0.05)
        # Kill the replica only once it holds part of a saga still open (on a loaded machine the other
        # replicas may have taken every task so far): that saga must then finish elsewhere.
        victim = f"{processes['killed'].pid}@"
        deadline = time.monotonic() + 90
        while not await _open_sagas_worked_on_by(client, placed, victim):
            assert time.monotonic() < deadline, "the replica to kill never worked on an open saga"
            await asyncio.sleep(0.3)
        os.kill(processes["killed"].pid, signal.SIGKILL)
        processes["killed"].wait(10)
        results = await asyncio.wait_for(asyncio.gather(*(p.handle.result() for p in placed)), 150)
        worked_on = [await _worked_on(client, p.handle.id) for p in placed]
        delivered = [uuid.UUID(order.order_id) for fail_at, order in orders if fail_at is None]
        deadline = time.monotonic() + 60  # Billing invoices a fulfilled order after the saga moved on
        while _count(engine, select(func.count()).select_from(invoices)
                     .where(invoices.c.order_id.in_(delivered))) < len(delivered):
            assert time.monotonic() < deadline, "not every delivered order was invoiced"
            await asyncio.sleep(0.2)
    finally:
        stop_workers(*processes.values())

    # Every saga ended as its scenario says.
    assert Counter(r.status for r in results) == Counter(
        {EXPECTED[fail_at]: n for fail_at, n in SCENARIOS.items()})
    assert [(fail_at, r.status) for (fail_at, _), r in zip(orders, results, strict=True)
            if r.status != EXPECTED[fail_at]] == []
    # The kill landed mid-saga: the killed replica had run part of sagas that then finished on the others.
    killed = f"{processes['killed'].pid}@"
    taken_over = [ids for ids in worked_on if any(i.startswith(killed) for i in ids)
                  and any(not i.startswith(killed) for i in ids)]
    assert taken_over, "the killed replica ran no saga that another replica finished"
    # Nothing happened twice: one capture per paid order, each resource created once, one invoice
    # per delivered order, one refund per compensated one.
    for fail_at, order in orders:
        order_id = uuid.UUID(order.order_id)
        captures = _count(engine, select(func.count()).select_from(psp_operations).where(
            psp_operations.c.order_id == order_id, psp_operations.c.kind == "capture"))
        assert captures == (0 if fail_at == "payment" else 1), (fail_at, "captures")
        with engine.connect() as conn:
            names = Counter(conn.execute(select(cloud.c.name).where(cloud.c.order_id == order_id)).scalars())
        expected_names = {None: {"network": 1, "disk": 1, "vps": 1}, "vps": {"network": 1, "disk": 1},
                          "payment": {}}[fail_at]
        assert dict(names) == expected_names, (fail_at, "resources")
        assert _count(engine, select(func.count()).select_from(invoices).where(
            invoices.c.order_id == order_id)) == (1 if fail_at is None else 0), (fail_at, "invoices")
        assert _count(engine, select(func.count()).select_from(refunds).where(
            refunds.c.order_id == order_id)) == (1 if fail_at == "vps" else 0), (fail_at, "refunds")
    # The replica that stayed logged no traceback and no error.
    assert log_problems(logs["kept"]) == []
