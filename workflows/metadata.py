"""What the Temporal Web UI shows of a saga: its summary and details, the summary of every activity,
timer and wait, and the names of the outcomes.

User metadata is the Web UI's own vocabulary (a workflow's static summary and details, an event's
summary, the current details); none of it is a workflow command, so none of it needs a patch. All
text is built here from the order and the catalog, so the workflow, the Order API and the tests say
the same words. Pure functions: the workflow sandbox imports this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import schemas
from schemas.payloads.order import CompensationStep
from workflows.contracts import OrderRequest
from workflows.states import SagaStatus

__all__ = [
    "INCIDENT_WORKFLOW_TYPE",
    "OUTCOMES",
    "incident_summary",
    "incident_workflow_id",
    "open_incident_summary",
    "outcome_line",
    "publish_summary",
    "saga_details",
    "saga_summary",
    "undo_label",
    "wait_summary",
    "window_summary",
]

#: The workflow type of an incident that waits for a person: a row of its own in the Web UI's list.
INCIDENT_WORKFLOW_TYPE = "OrderIncident"

#: One line per final status, as the memo's `outcome` and the current details state it.
OUTCOMES: Mapping[SagaStatus, str] = MappingProxyType({
    SagaStatus.DELIVERED: "delivered: the service runs and the customer was told",
    SagaStatus.PAYMENT_FAILED: "payment failed: nothing was provisioned or charged",
    SagaStatus.CANCELLED: "cancelled by the customer: every step was undone",
    SagaStatus.COMPENSATED: "failed and compensated: every step was undone",
    SagaStatus.COMPENSATION_FAILED: "NEEDS A PERSON: an undo failed, the incident waits for them",
    SagaStatus.RESOLVED_MANUALLY: "resolved by a person after a failed undo",
})

_UNDO_LABELS: Mapping[CompensationStep, str] = MappingProxyType({
    CompensationStep.REFUND_PAYMENT: "refund the payment (Billing)",
    CompensationStep.DEPROVISION_RESOURCES: "release the resources (Provisioning)",
})


def saga_summary(order: OrderRequest) -> str:
    """The one line the Web UI shows for a saga: order, plan, region and tenant."""
    return f"Order {order.order_id} · {order.plan_id} in {order.region} · tenant {order.tenant_id}"


def saga_details(order: OrderRequest) -> str:
    """Markdown: what this saga will do, step by step, and how it undoes them."""
    total = order.total
    return "\n".join(
        [
            f"**Order fulfilment** for tenant `{order.tenant_id}`: plan `{order.plan_id}` in "
            f"`{order.region}`, {total.amount_minor / 100:.2f} {total.currency} a month.",
            "",
            "1. publish `order.created` and wait for the payment "
            f"(at most {order.timings.payment_timeout_s:g} s)",
            "2. publish `order.payment-confirmed` (Billing charges it)",
            "3. ask Provisioning with `order.provisioning-started` and wait for "
            f"`provisioning.completed` (at most {order.timings.provisioning_timeout_s:g} s)",
            "4. publish `order.fulfilled` and `order.service-delivered` (Notification tells the customer)",
            "",
            "When a step fails or the customer cancels, the saga undoes what was done, newest first "
            "(release the resources, refund the payment). An undo that cannot finish opens an "
            f"incident (`{INCIDENT_WORKFLOW_TYPE}`) and waits for a person: "
            "`cloud-factory incident retry` or `resolve --note …`.",
        ]
    )


def _consumers(event_type: str) -> str:
    entry = schemas.catalog[event_type]
    return ", ".join(service.value.capitalize() for service in entry.consumers) or "nobody"


def publish_summary(event_type: str, attempt: int = 1) -> str:
    """An activity's summary: the event it publishes and the services that consume it."""
    again = f" (ask {attempt})" if attempt > 1 else ""
    return f"publish {event_type}{again} → {_consumers(event_type)}"


def open_incident_summary(failed_steps: list[CompensationStep]) -> str:
    """The summary of the activity that records the incident in the Order service's table."""
    return ("open incident for " + ", ".join(step.value for step in failed_steps)
            + " → Order (orders.incidents)")


def wait_summary(what: str, seconds: float) -> str:
    """A wait's summary: what the saga waits for and its deadline ("wait for provisioning, 120 s")."""
    return f"wait for {what}, {seconds:g} s"


def window_summary(what: str, attempt: int, windows: int, seconds: float) -> str:
    """One compensation window ("refund confirmation window 3/6, 8 s")."""
    return f"{what} confirmation window {attempt}/{windows}, {seconds:g} s"


def undo_label(step: CompensationStep) -> str:
    """An undo as a person reads it."""
    return _UNDO_LABELS.get(step, step.value)


def outcome_line(order: OrderRequest, status: SagaStatus) -> str:
    """The memo's one-line summary: which order, and how it ended (or where it is)."""
    outcome = OUTCOMES.get(status, f"in progress: {status}")
    return f"order {order.order_id} ({order.plan_id}, {order.region}) for tenant {order.tenant_id}: {outcome}"


def incident_workflow_id(saga_workflow_id: str, attempt: int) -> str:
    """The id of a saga's incident workflow (a retry that fails again opens the next attempt)."""
    return f"incident-{saga_workflow_id}-{attempt}"


def incident_summary(order: OrderRequest, failed_steps: list[CompensationStep]) -> str:
    """The incident's line in the Web UI's list."""
    steps = ", ".join(step.value for step in failed_steps)
    return f"NEEDS A PERSON · order {order.order_id} · tenant {order.tenant_id} · failed: {steps}"
