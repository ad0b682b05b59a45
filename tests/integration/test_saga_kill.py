"""SIGKILL the worker process mid-saga, start it again: the saga completes and nothing is duplicated.

The workers run as a real `cloud-factory worker all` subprocess (isolated task queue, consumer
groups and tenant prefix). The order is held at the disk (its create waits until released) and set
to fail at the VPS, so the kill lands while the disk is provably being created, and recovery must
still roll back exactly what exists and refund exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cloud_factory.faults import place_failing
from core.db import engine_for
from core.settings import Settings
from core.temporal import connect_client
from services.billing.tables import psp_operations, refunds
from services.order.api import new_order
from services.provisioning.simulator import held_since, inject_fault, release_fault
from services.provisioning.tables import cloud, resources
from tests.support.worker_process import isolation_env, start_workers, stop_workers

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]


def _rows(engine, statement) -> list:
    with engine.connect() as conn:
        return list(conn.execute(statement).all())


async def test_sigkill_mid_provisioning_then_restart(stack, settings: Settings, unique: str) -> None:
    engine = engine_for(settings.dsn)
    order = new_order(f"k{unique}-acme", "vm-standard-2")
    order.timings.provisioning_timeout_s = 120
    order_id = uuid.UUID(order.order_id)
    inject_fault(engine, order.order_id, "disk", "hold", delay_ms=300_000)
    env = isolation_env(unique, f"k{unique}-")
    first = start_workers(settings, env)
    second = None
    try:
        client = await connect_client(settings)
        placed = await place_failing(client, engine, order, "vps", task_queue=env["CF_ORDER_TASK_QUEUE"])
        deadline = time.monotonic() + 90
        while held_since(engine, order_id, "disk") is None:
            assert time.monotonic() < deadline, "provisioning never reached the disk"
            await asyncio.sleep(0.05)
        states = select(resources.c.name, resources.c.state).where(resources.c.order_id == order_id)
        assert sorted(tuple(r) for r in _rows(engine, states)) == [
            ("disk", "creating"), ("network", "created")]
        os.kill(first.pid, signal.SIGKILL)  # inside the provider's create of the disk
        first.wait(10)
        release_fault(engine, order_id, "disk")
        second = start_workers(settings, env)
        result = await asyncio.wait_for(placed.handle.result(), 150)
    finally:
        stop_workers(first, second)

    assert result.status == "compensated"
    # Each resource exists at the provider exactly once, and all of them are gone again.
    at_provider = _rows(
        engine,
        select(cloud.c.name, cloud.c.deleted_at)
        .where(cloud.c.order_id == order_id)
        .order_by(cloud.c.created_at),
    )
    assert [r.name for r in at_provider] == ["network", "disk"]
    assert all(r.deleted_at is not None for r in at_provider)
    # Exactly one refund, paid out once.
    assert [
        r.status for r in _rows(engine, select(refunds.c.status).where(refunds.c.order_id == order_id))
    ] == ["completed"]
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count())
                .select_from(psp_operations)
                .where(psp_operations.c.order_id == order_id, psp_operations.c.kind == "refund")
            ).scalar_one()
            == 1
        )
