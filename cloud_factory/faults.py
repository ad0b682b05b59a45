"""Failure scenarios for the demo, `order place --fail-at` and the tests: arm the Provisioning and
Billing simulators to fail one order at a chosen point, then place it.

The Order API knows nothing of this: a scenario only writes the simulators' own fault tables
(`services.provisioning.simulator`, `services.billing.gateway`) before the order is placed, and a
declined payment is simply reported as declined.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Engine
from temporalio.client import Client

from cloud_factory.choices import FAIL_POINTS
from services.billing.gateway import inject_gateway_fault
from services.order.api import PlacedOrder, place_order
from services.provisioning.simulator import inject_fault
from workflows.contracts import OrderRequest
from workflows.order_fulfillment import ORDER_TASK_QUEUE
from workflows.plans import RESOURCE_STEPS

__all__ = ["FAIL_POINTS", "arm_failure", "place_failing"]

# FAIL_POINTS (kept import-free in cloud_factory.choices for the CLI's help): payment: declined;
# network|disk|vps (RESOURCE_STEPS): provisioning fails there for good (compensation); transient: the
# VPS create fails twice then succeeds; refund: VPS fails and the refund is declined (compensation
# fails); deprovision: VPS fails and deleting the disk is refused (never confirmed).


def arm_failure(engine: Engine, order_id: uuid.UUID | str, fail_at: str) -> None:
    """Arm the simulators for `fail_at` (see FAIL_POINTS) before the order is placed; `payment` needs
    no simulator (the payment is reported declined)."""
    if fail_at not in FAIL_POINTS:
        raise ValueError(f"--fail-at {fail_at!r} is not one of {', '.join(FAIL_POINTS)}")
    if fail_at in RESOURCE_STEPS:
        inject_fault(engine, order_id, fail_at, "permanent")
    elif fail_at == "transient":
        inject_fault(engine, order_id, "vps", "transient", times=2)
    elif fail_at == "refund":
        inject_fault(engine, order_id, "vps", "permanent")
        inject_gateway_fault(engine, order_id, "refund", "permanent")
    elif fail_at == "deprovision":
        inject_fault(engine, order_id, "vps", "permanent")
        inject_fault(engine, order_id, "disk", "delete")


async def place_failing(
    client: Client,
    engine: Engine,
    order: OrderRequest,
    fail_at: str | None,
    *,
    pay: bool = True,
    task_queue: str = ORDER_TASK_QUEUE,
) -> PlacedOrder:
    """Place `order` set up to fail at `fail_at` (None: the happy path); with `pay`, the payment is
    reported right away — declined when `fail_at` is `payment`."""
    if fail_at is not None:
        arm_failure(engine, order.order_id, fail_at)
    return await place_order(client, order, pay=pay, declined=fail_at == "payment", task_queue=task_queue)
