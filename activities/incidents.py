"""The `open_incident` / `close_incident` activities: a compensation that cannot finish becomes a row
for a person, closed with their decision (`services.order.incidents`)."""

from __future__ import annotations

from sqlalchemy import Engine
from temporalio import activity

from services.order.incidents import close_incident, record_incident
from workflows.contracts import IncidentClosure, IncidentRequest
from workflows.ports import IncidentPort

__all__ = ["IncidentActivities"]


class IncidentActivities(IncidentPort):
    """Holds the Order service's engine; idempotent (one row per saga and first failed step)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @activity.defn(name="open_incident")
    def open_incident(self, request: IncidentRequest) -> None:
        failed_steps = [str(step) for step in request.failed_steps or [request.failed_step]]
        record_incident(self.engine, workflow_id=request.workflow_id, tenant_id=request.tenant_id,
                        order_id=request.order_id, correlation_id=request.correlation_id,
                        failed_step=str(request.failed_step), failed_steps=failed_steps,
                        completed_steps=[str(s) for s in request.completed_steps], reason=request.reason)
        activity.logger.warning("incident opened for %s: %s failed (%s)", request.workflow_id,
                                ", ".join(failed_steps), request.reason)

    @activity.defn(name="close_incident")
    def close_incident(self, closure: IncidentClosure) -> None:
        closed = close_incident(self.engine, workflow_id=closure.workflow_id,
                                failed_step=str(closure.failed_step),
                                resolution=closure.resolution, note=closure.note, closed_by=closure.by)
        activity.logger.info("incident of %s closed (%s, %d row)", closure.workflow_id, closure.resolution,
                             closed)
