"""Waiting on a saga that needs a person, and proving what it has (not) done meanwhile.

`wait_for_outcome` reports an incident as soon as the saga's `status` query names it. The incident
workflow starts a moment later and takes a decision only once its first task has run (a decision
sent before is refused: "not opened yet", or not found at all); after a decision the saga still
names the decided incident until it has heard the result. So a test does not act on the first
answer: `incident_open` waits for the named attempt to be open and able to decide, and `settled`
waits until the saga has nothing in flight (no workflow task, no activity), so its history and the
events it published are final until someone acts.
"""

from __future__ import annotations

import asyncio
import time

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from services.order.api import Outcome, wait_for_outcome
from workflows.contracts import IncidentTicket
from workflows.incident import OrderIncidentWorkflow
from workflows.metadata import incident_workflow_id

__all__ = ["event_types", "history", "incident_open", "parked_on_incident", "settled"]


async def history(handle: WorkflowHandle) -> list[HistoryEvent]:
    """Every event of the workflow's history, as the server has it now."""
    return list((await handle.fetch_history()).events)


def event_types(events: list[HistoryEvent]) -> list[str]:
    """`WORKFLOW_TASK_COMPLETED`, … — the names of the events, in order."""
    return [EventType.Name(event.event_type).removeprefix("EVENT_TYPE_") for event in events]


_IN_FLIGHT = {EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED}


async def settled(handle: WorkflowHandle, *, timeout: float = 60) -> list[HistoryEvent]:
    """The history once the workflow waits with nothing in flight (or has closed): no workflow task,
    no activity and no child start pending, the same history before and after the check. Nothing
    changes it now but something from outside (a signal, an Update, a child's result, a timer)."""
    deadline = time.monotonic() + timeout
    while True:
        description = await handle.describe()
        if description.status is not WorkflowExecutionStatus.RUNNING:
            return await history(handle)
        raw = description.raw_description
        if not raw.HasField("pending_workflow_task") and not raw.pending_activities:
            events = await history(handle)
            again = (await handle.describe()).raw_description
            starting = {e.start_child_workflow_execution_initiated_event_attributes.workflow_id
                        for e in events if e.event_type in _IN_FLIGHT}
            started = {e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
                        for e in events
                        if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED}
            if (not again.HasField("pending_workflow_task") and not again.pending_activities
                    and again.workflow_execution_info.history_length == len(events) and starting <= started):
                return events
        assert time.monotonic() < deadline, f"{handle.id} never settled within {timeout:g} s"
        await asyncio.sleep(0.1)


async def incident_open(
    client: Client, saga: WorkflowHandle, attempt: int = 1, *, timeout: float = 120
) -> tuple[Outcome, IncidentTicket]:
    """The saga's outcome once its incident `attempt` is open and able to take a decision, and the
    incident's ticket. Fails at once, naming the status, if the saga ends instead."""
    expected = incident_workflow_id(saga.id, attempt)
    deadline = time.monotonic() + timeout
    while True:
        outcome = await wait_for_outcome(saga, timeout=max(deadline - time.monotonic(), 0.1))
        assert outcome.incident_id is not None, (
            f"{saga.id} ended {outcome.status} without incident {expected}")
        if outcome.incident_id == expected:
            break
        assert time.monotonic() < deadline, f"{saga.id} still names {outcome.incident_id}, not {expected}"
        await asyncio.sleep(0.2)  # the saga still names the incident decided before
    incident = client.get_workflow_handle(expected)
    while True:
        try:
            ticket = await incident.query(OrderIncidentWorkflow.ticket)
        except RPCError:
            ticket = None  # not started yet, or its first task not run yet
        if ticket is not None:
            return outcome, ticket
        assert time.monotonic() < deadline, f"the incident {expected} never opened"
        await asyncio.sleep(0.1)


async def parked_on_incident(saga: WorkflowHandle, incident_id: str) -> list[HistoryEvent]:
    """Positive proof that the saga waits on its incident and does nothing else: it has settled,
    the incident is its running child, and it scheduled no activity (so published no event) since it
    started the incident. Returns the history."""
    events = await settled(saga)
    raw = (await saga.describe()).raw_description
    assert [child.workflow_id for child in raw.pending_children] == [incident_id]
    initiated = [
        index
        for index, event in enumerate(events)
        if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
        and event.start_child_workflow_execution_initiated_event_attributes.workflow_id == incident_id
    ]
    assert len(initiated) == 1, f"{saga.id} started {incident_id} {len(initiated)} times"
    after = event_types(events[initiated[0] + 1 :])
    assert "CHILD_WORKFLOW_EXECUTION_STARTED" in after
    # Neither an activity nor a marker (a local activity's publish is one) since.
    acted = {"ACTIVITY_TASK_SCHEDULED", "MARKER_RECORDED"} & set(after)
    assert not acted, f"{saga.id} acted while waiting for a person: {after}"
    return events
