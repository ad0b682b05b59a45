"""Everything known about one order, from the sources of truth: Temporal and Kafka.

The workflow's search attributes and memo give status, step and the compensation stack even when no
worker is running (queries would need one); its history counts activities and signals; the flow's
events and dead-lettered records are read back from Kafka by correlationId.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import schemas
from core.settings import Settings
from services.order.flow import read_dlq, read_flow

if TYPE_CHECKING:
    from temporalio.client import WorkflowHistory

__all__ = ["OrderReport", "inspect_order"]


@dataclass
class OrderReport:
    workflow_id: str
    execution_status: str
    status: str
    step: str
    tenant_id: str
    correlation_id: str
    compensation_stack: list[str]
    history_events: int
    activities: int
    signals: int
    outcome: str = ""  # the memo's one-line summary (states the outcome since `operator-view`)
    incident_id: str | None = None  # the incident that waits for a person, while it does
    updates: int = 0
    events: list[dict] = field(default_factory=list)
    dlq: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _attr(description, name: str) -> str:
    field_ = description.raw_description.workflow_execution_info.search_attributes.indexed_fields.get(name)
    return json.loads(field_.data) if field_ is not None else ""


def _owed(memo: dict) -> list[str]:
    """The owed undos, next first: `compensation.owed` since `operator-view` (always present), the
    older `compensationStack` (which Temporal drops once it is `[]`) before."""
    compensation = memo.get("compensation")
    if isinstance(compensation, dict):
        return list(compensation.get("owed", []))
    return list(memo.get("compensationStack", []))


def _local_activities(history: WorkflowHistory) -> int:
    """Local activities that completed (since `local-steps` a step's publish is one): their markers."""
    return sum(
        1
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
        and not event.marker_recorded_event_attributes.HasField("failure")
    )


async def inspect_order(settings: Settings, workflow_id: str) -> OrderReport:
    from core.temporal import connect_client

    client = await connect_client(settings)
    handle = client.get_workflow_handle(workflow_id)
    description = await handle.describe()
    memo = await description.memo()
    history = await handle.fetch_history()
    kinds = [event.WhichOneof("attributes") for event in history.events]
    correlation = _attr(description, "CorrelationId")
    since_ms = int(description.start_time.timestamp() * 1000) - 5000
    types = list(schemas.catalog)
    events = (
        [
            {
                "eventType": r.envelope.event_type,
                "eventId": str(r.envelope.event_id),
                "causationId": str(r.envelope.causation_id) if r.envelope.causation_id else None,
                "producer": r.envelope.producer,
                "timestampMs": r.timestamp_ms,
                "signatureOk": r.signature_ok,
            }
            for r in read_flow(settings, correlation, types, since_ms)
        ]
        if correlation
        else []
    )
    dlq = (
        [
            {
                "topic": topic,
                "errorClass": headers.get("x-cf-dlq-error-class", "?"),
                "reason": headers.get("x-cf-dlq-reason", "?"),
            }
            for topic, _value, headers in read_dlq(settings, types, since_ms, correlation_id=correlation)
        ]
        if correlation
        else []
    )
    return OrderReport(
        workflow_id=workflow_id,
        execution_status=description.status.name if description.status else "?",
        status=_attr(description, "OrderStatus") or "?",
        step=_attr(description, "OrderStep") or "?",
        tenant_id=_attr(description, "TenantId"),
        correlation_id=correlation,
        compensation_stack=_owed(memo),
        outcome=str(memo.get("summary", "")),
        incident_id=memo.get("incident"),
        updates=kinds.count("workflow_execution_update_accepted_event_attributes"),
        history_events=len(kinds),
        activities=kinds.count("activity_task_completed_event_attributes") + _local_activities(history),
        signals=kinds.count("workflow_execution_signaled_event_attributes"),
        events=events,
        dlq=dlq,
    )
