"""The Order API: place, pay, cancel and inspect orders — the only way in to the saga.

Placing an order starts `OrderFulfillmentWorkflow` (id from tenant + order id, so a re-submit is
rejected) with its summary and details for the Web UI and, like a checkout, reports the payment in
the same call (Update-with-Start: the order exists only with its payment recorded). Paying and
cancelling are Updates: the saga's validators refuse what it can no longer do, and the caller gets
the reason as `OrderCommandRefused` before anything is recorded. Demos and tests that want an order
to fail arm the simulators before placing it; this API never touches them.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from workflows.contracts import (
    CancelRequest,
    OrderRequest,
    OrderResult,
    OrderSnapshot,
    PaymentConfirmation,
    PaymentFailure,
    SagaTimings,
)
from workflows.metadata import saga_details, saga_summary
from workflows.order_fulfillment import ORDER_TASK_QUEUE, SA_ORDER_STATUS, OrderFulfillmentWorkflow
from workflows.states import SagaStatus

__all__ = [
    "PLANS",
    "REGIONS",
    "OrderCommandRefused",
    "Outcome",
    "PlacedOrder",
    "cancel_order",
    "describe",
    "new_order",
    "pay_order",
    "place_order",
    "refusal_of",
    "wait_for_outcome",
]

#: The plans on sale and their monthly price in cents.
PLANS: dict[str, int] = {"vm-small-1": 900, "vm-standard-2": 2900, "vm-large-4": 7900, "vm-xlarge-8": 15900}
#: Where resources can be created.
REGIONS = ("eu-west-1", "eu-central-1", "us-east-1")
# The envelope's tenantId rule (schemas' TenantId), checked before anything is started.
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class OrderCommandRefused(ValueError):
    """The saga refused a person's command; the message is its reason (one line)."""


def refusal_of(exc: WorkflowUpdateFailedError) -> str:
    """The validator's (or handler's) reason inside an Update failure."""
    cause = exc.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or exc)


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
        raise ValueError(f"tenant {tenant_id!r}: 1-64 letters, digits or _.:-, "
                         "starting with a letter or digit")
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
    timeout_s: float = 300.0,
    rpc_timeout_s: float | None = None,
) -> PlacedOrder:
    """Start the saga; with `pay`, report the payment outcome (`declined` or confirmed) in the same
    call (Update-with-Start, which waits until a saga worker has recorded it).

    A busy server or no saga worker yet cuts that wait (each cut after `rpc_timeout_s`, the server's
    own limit when None); the order is placed by then, so the payment is sent again under the same
    Update id (Temporal runs it once) until a worker records it — `TimeoutError` after `timeout_s`."""
    start: dict[str, Any] = {
        "id": order.workflow_id,
        "task_queue": task_queue,
        "memo": {"order": order.order_id, "tenant": order.tenant_id, "plan": order.plan_id,
                 "region": order.region},
        "static_summary": saga_summary(order),
        "static_details": saga_details(order),
        # An order id is placed once: a finished saga's id is not reused for a second order.
        "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
    }
    if not pay:
        handle = await client.start_workflow(OrderFulfillmentWorkflow.run, order, **start)
        return PlacedOrder(order, handle)
    operation = WithStartWorkflowOperation(
        OrderFulfillmentWorkflow.run, order, id_conflict_policy=WorkflowIDConflictPolicy.FAIL, **start
    )
    update: Callable[..., Any]
    update, argument = (
        (OrderFulfillmentWorkflow.decline_payment, PaymentFailure())
        if declined
        else (OrderFulfillmentWorkflow.pay, PaymentConfirmation(payment_id=str(uuid.uuid4())))
    )
    update_id = f"placed-{uuid.uuid4()}"
    rpc_timeout = timedelta(seconds=rpc_timeout_s) if rpc_timeout_s else None
    deadline = asyncio.get_running_loop().time() + timeout_s
    try:
        await client.execute_update_with_start_workflow(
            update, argument, start_workflow_operation=operation, id=update_id, rpc_timeout=rpc_timeout)
    except WorkflowUpdateFailedError as exc:
        raise OrderCommandRefused(f"{order.workflow_id}: {refusal_of(exc)}") from None
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        _reraise_if_cancelled()
        handle = await _placed_handle(client, operation, order)
        await _until_recorded(handle, update, argument, update_id, deadline, rpc_timeout)
        return PlacedOrder(order, handle)
    return PlacedOrder(order, await operation.workflow_handle())


async def _placed_handle(
    client: Client, operation: WithStartWorkflowOperation, order: OrderRequest
) -> WorkflowHandle:
    """The order's handle after a cut wait: the operation's when it saw the start, else by id (the
    start may have happened with only its answer lost)."""
    try:
        return await operation.workflow_handle()
    except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError):
        _reraise_if_cancelled()
        return client.get_workflow_handle_for(OrderFulfillmentWorkflow.run, order.workflow_id)


async def _until_recorded(
    handle: WorkflowHandle, update: Callable[..., Any], argument: object, update_id: str,
    deadline: float, rpc_timeout: timedelta | None,
) -> None:
    """Send the placed order's payment Update again (same id: it runs once) until a worker records it
    or the saga has ended (it cannot end without it, short of its payment timeout)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            await handle.execute_update(update, argument, id=update_id, rpc_timeout=rpc_timeout)
            return
        except WorkflowUpdateFailedError as exc:
            raise OrderCommandRefused(f"{handle.id}: {refusal_of(exc)}") from None
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            _reraise_if_cancelled()
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
            # Ended (then its payment was recorded: it cannot end without one, short of its payment
            # timeout), or never started: the cut answer was the start's.
            await describe(handle, f"{handle.id}: the server did not confirm the order; "
                                   "placing it again is safe (an order id is placed once)")
            return
        if loop.time() >= deadline:
            raise TimeoutError(f"{handle.id}: placed, but no saga worker recorded its payment in time; "
                               "is `cloud-factory worker all` running?")
        await asyncio.sleep(0.5)  # a server cutting every wait at once is not asked in a tight loop


def _reraise_if_cancelled() -> None:
    """The SDK reports its caller's cancellation as a cut Update wait: a cancelled caller stays cancelled."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def pay_order(
    client: Client, workflow_id: str, *, declined: bool = False, payment_id: str | None = None
) -> str:
    """Report the payment (or its decline); `OrderCommandRefused` when the order takes none."""
    if declined:
        return await _command(client, workflow_id, OrderFulfillmentWorkflow.decline_payment, PaymentFailure(),
                              "pay")
    payment = PaymentConfirmation(payment_id=payment_id or str(uuid.uuid4()))
    return await _command(client, workflow_id, OrderFulfillmentWorkflow.pay, payment, "pay")


async def cancel_order(client: Client, workflow_id: str, *, note: str | None = None,
                       timeout_s: float = 30.0) -> str:
    """Cancel the order; `OrderCommandRefused` when it has ended or is already being cancelled."""
    return await _command(client, workflow_id, OrderFulfillmentWorkflow.request_cancel,
                          CancelRequest(note=note), "cancel", timeout_s=timeout_s)


async def describe(handle: WorkflowHandle, missing: str) -> WorkflowExecutionDescription:
    """The workflow's description; LookupError(`missing`) when there is no such workflow."""
    try:
        return await handle.describe()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise LookupError(missing) from None
        raise


async def _command(client: Client, workflow_id: str, update: Callable[..., Any], argument: object, verb: str,
                   *, timeout_s: float = 30.0) -> str:
    """Send one Update; a refusal or an order that has ended becomes `OrderCommandRefused`, an unknown
    order `LookupError`, no saga worker answering within `timeout_s` `TimeoutError` — each one line
    that names the order."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        return str(await asyncio.wait_for(handle.execute_update(update, argument), timeout_s))
    except WorkflowUpdateFailedError as exc:
        raise OrderCommandRefused(f"{workflow_id}: {refusal_of(exc)}") from None
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):  # the SDK's, when the wait is cut
        raise TimeoutError(f"{workflow_id}: no saga worker answered within {timeout_s:g} s; "
                           "is `cloud-factory worker all` running?") from None
    except RPCError as exc:
        if exc.status is not RPCStatusCode.NOT_FOUND:
            raise
    description = await describe(handle, f"no such workflow {workflow_id} (see `cloud-factory order show`)")
    if description.status is WorkflowExecutionStatus.COMPLETED:
        status = description.typed_search_attributes.get(SA_ORDER_STATUS) or "completed"
    else:
        status = description.status.name.lower() if description.status else "closed"
    raise OrderCommandRefused(f"{workflow_id}: the order has already finished ({status}): nothing to {verb}")


@dataclass(frozen=True)
class Outcome:
    """Where a saga settled: its result once it ended, or the incident it waits on for a person."""

    status: str
    result: OrderResult | None = None
    incident_id: str | None = None

    @property
    def needs_a_person(self) -> bool:
        return self.incident_id is not None


async def wait_for_outcome(
    handle: WorkflowHandle,
    *,
    timeout: float | None = None,
    poll_s: float = 0.5,
    on_snapshot: Callable[[OrderSnapshot], None] | None = None,
) -> Outcome:
    """Wait until the saga ends or opens an incident (it then waits for a person, possibly for days).

    `on_snapshot` sees every status it polls (a progress display needs no polling loop of its own).
    TimeoutError after `timeout` seconds; the saga's own failure propagates as the client raises it."""

    async def settle() -> Outcome:
        ended = asyncio.ensure_future(handle.result())
        try:
            while True:
                done, _ = await asyncio.wait({ended}, timeout=poll_s)
                if done:
                    result = ended.result()
                    if isinstance(result, dict):  # a handle not typed by the saga's run method
                        result = OrderResult(**{**result, "status": SagaStatus(result["status"])})
                    return Outcome(str(result.status), result)
                try:
                    snapshot = await handle.query(OrderFulfillmentWorkflow.status)
                except RPCError:
                    continue  # no worker answered this time; the result may still come
                if on_snapshot is not None:
                    on_snapshot(snapshot)
                if snapshot.incident_id is not None:
                    return Outcome(str(snapshot.status), None, snapshot.incident_id)
        finally:
            ended.cancel()

    return await asyncio.wait_for(settle(), timeout)
