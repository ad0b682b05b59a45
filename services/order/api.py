"""The Order API: place, pay, cancel and inspect orders — the only way in to the saga.

Placing an order starts `OrderFulfillmentWorkflow` (id from tenant + order id, so a re-submit is
rejected) and, like a checkout, reports the payment outcome as a signal. Demos and tests that want an
order to fail arm the simulators before placing it; this API never touches them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from temporalio.client import Client, WorkflowHandle

from workflows.contracts import CancelRequest, OrderRequest, PaymentConfirmation, PaymentFailure, SagaTimings
from workflows.order_fulfillment import ORDER_TASK_QUEUE, OrderFulfillmentWorkflow

__all__ = ["PLANS", "REGIONS", "PlacedOrder", "cancel_order", "new_order", "pay_order", "place_order"]

#: The plans on sale and their monthly price in cents.
PLANS: dict[str, int] = {"vm-small-1": 900, "vm-standard-2": 2900, "vm-large-4": 7900, "vm-xlarge-8": 15900}
#: Where resources can be created.
REGIONS = ("eu-west-1", "eu-central-1", "us-east-1")
# The envelope's tenantId rule (schemas' TenantId), checked before anything is started.
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


@dataclass(frozen=True)
class PlacedOrder:
    order: OrderRequest
    handle: WorkflowHandle


def new_order(
    tenant_id: str,
    plan_id: str,
    *,
    region: str = "eu-west-1",
    customer_id: str | None = None,
    order_id: str | None = None,
    timings: SagaTimings | None = None,
) -> OrderRequest:
    """An order priced from its plan, 19 % tax; ValueError naming the field for anything the saga would
    refuse later (so nothing is started, charged or published for it)."""
    if not _TENANT.match(tenant_id or ""):
        raise ValueError(f"tenant {tenant_id!r}: 1-64 letters, digits or _.:-, starting with a letter or digit")
    if plan_id not in PLANS:
        raise ValueError(f"plan {plan_id!r} is not on sale; known plans: {', '.join(PLANS)}")
    if region not in REGIONS:
        raise ValueError(f"region {region!r} is not served; known regions: {', '.join(REGIONS)}")
    amount = PLANS[plan_id]
    return OrderRequest(
        tenant_id=tenant_id,
        order_id=order_id or str(uuid.uuid4()),
        customer_id=customer_id or str(uuid.uuid4()),
        plan_id=plan_id,
        region=region,
        amount_minor=amount,
        tax_minor=amount * 19 // 100,
        timings=timings or SagaTimings(),
    )


async def place_order(
    client: Client,
    order: OrderRequest,
    *,
    pay: bool = True,
    declined: bool = False,
    task_queue: str = ORDER_TASK_QUEUE,
) -> PlacedOrder:
    """Start the saga; with `pay`, report the payment outcome right away (`declined` or confirmed)."""
    handle = await client.start_workflow(
        OrderFulfillmentWorkflow.run,
        order,
        id=order.workflow_id,
        task_queue=task_queue,
        memo={
            "order": order.order_id,
            "tenant": order.tenant_id,
            "plan": order.plan_id,
            "region": order.region,
        },
    )
    if pay:
        await pay_order(client, order.workflow_id, declined=declined)
    return PlacedOrder(order, handle)


async def pay_order(
    client: Client, workflow_id: str, *, declined: bool = False, payment_id: str | None = None
) -> None:
    handle = client.get_workflow_handle(workflow_id)
    if declined:
        await handle.signal(OrderFulfillmentWorkflow.fail_payment, PaymentFailure())
    else:
        await handle.signal(
            OrderFulfillmentWorkflow.confirm_payment,
            PaymentConfirmation(payment_id=payment_id or str(uuid.uuid4())),
        )


async def cancel_order(client: Client, workflow_id: str, *, note: str | None = None) -> None:
    await client.get_workflow_handle(workflow_id).signal(
        OrderFulfillmentWorkflow.cancel, CancelRequest(note=note)
    )
