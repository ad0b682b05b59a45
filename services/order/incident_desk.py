"""The incident desk: the sagas that wait for a person, and the two decisions a person can make.

An incident is an `OrderIncident` workflow (a child of the saga whose undo failed) that stays
Running until someone decides. The desk finds them through Temporal's visibility (no table of its
own), shows one (its ticket and, once decided, the decision), and sends the decision as an Update:
`retry` (the saga runs the failed undos again, newest first) or `resolve` with a note. The
incident's validators refuse a second decision or a resolution without a note; the refusal comes
back as `OrderCommandRefused`, one line.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from services.order.api import OrderCommandRefused, describe, refusal_of
from workflows.contracts import IncidentAction, IncidentDecision, IncidentTicket
from workflows.incident import OrderIncidentWorkflow
from workflows.metadata import INCIDENT_WORKFLOW_TYPE
from workflows.order_fulfillment import OrderFulfillmentWorkflow

__all__ = ["IncidentView", "find_incident", "list_incidents", "resolve_incident", "retry_incident",
           "show_incident"]


@dataclass
class IncidentView:
    """One incident as a person reads it."""

    incident_id: str
    status: str  # running (waits for a person) | completed (decided or expired) | …
    opened_at: dt.datetime | None
    ticket: IncidentTicket | None = None
    decision: IncidentDecision | None = None
    failed_steps: list[str] = field(default_factory=list)

    @property
    def waiting(self) -> bool:
        return self.status == "running" and self.decision is None


def _query(tenant: str | None, open_only: bool) -> str:
    parts = [f"WorkflowType = '{INCIDENT_WORKFLOW_TYPE}'"]
    if open_only:
        parts.append("ExecutionStatus = 'Running'")
    if tenant:
        parts.append(f"TenantId = '{tenant}'")
    return " AND ".join(parts)


async def list_incidents(client: Client, *, tenant: str | None = None, open_only: bool = True,
                         limit: int = 100) -> list[IncidentView]:
    """The incidents (by default those that still wait), newest first, each with its ticket."""
    views: list[IncidentView] = []
    async for execution in client.list_workflows(_query(tenant, open_only), limit=limit):
        views.append(await show_incident(client, execution.id))
    return views


async def find_incident(client: Client, reference: str) -> str:
    """The incident id of `reference`: an incident id itself, or the saga's workflow id (its open
    incident). LookupError naming what is missing otherwise."""
    if reference.startswith("incident-"):
        return reference
    try:
        snapshot = await client.get_workflow_handle(reference).query(OrderFulfillmentWorkflow.status)
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise LookupError(f"no saga {reference} "
                              "(give an incident id from `cloud-factory incident list`)") from None
        raise
    if snapshot.incident_id is None:
        raise LookupError(f"{reference} has no open incident (it is {snapshot.status}, step {snapshot.step})")
    return snapshot.incident_id


async def show_incident(client: Client, reference: str) -> IncidentView:
    """One incident: its state, its ticket and the decision (queried while its worker runs)."""
    incident_id = await find_incident(client, reference)
    handle = client.get_workflow_handle(incident_id)
    description = await describe(handle, f"no incident {incident_id} (see `cloud-factory incident list`)")
    status = description.status.name.lower() if description.status else "unknown"
    view = IncidentView(incident_id, status, description.start_time)
    try:
        view.ticket = await handle.query(OrderIncidentWorkflow.ticket)
        view.decision = await handle.query(OrderIncidentWorkflow.decision)
    except RPCError:
        pass  # no worker to answer: the list still shows the incident and its state
    if view.ticket is not None:
        view.failed_steps = [str(step) for step in view.ticket.failed_steps]
    if description.status is WorkflowExecutionStatus.COMPLETED and view.decision is None:
        view.decision = await handle.result()
    return view


async def retry_incident(client: Client, reference: str, *, by: str = "operator") -> str:
    """Ask the saga to run its failed undos again; the validator's refusal as OrderCommandRefused."""
    return await _decide(client, reference, "retry", IncidentAction(by=by))


async def resolve_incident(client: Client, reference: str, *, note: str, by: str = "operator") -> str:
    """Record that a person fixed it by hand (`note` says how); the saga ends `resolved_manually`."""
    return await _decide(client, reference, "resolve", IncidentAction(note=note, by=by))


async def _decide(client: Client, reference: str, decision: str, action: IncidentAction) -> str:
    incident_id = await find_incident(client, reference)
    update = OrderIncidentWorkflow.retry if decision == "retry" else OrderIncidentWorkflow.resolve
    try:
        return str(await client.get_workflow_handle(incident_id).execute_update(update, action))
    except WorkflowUpdateFailedError as exc:
        raise OrderCommandRefused(f"{incident_id}: {refusal_of(exc)}") from None
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise OrderCommandRefused(f"{incident_id}: the incident is closed "
                                      "(see `cloud-factory incident show`)") from None
        raise
