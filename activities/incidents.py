"""The `open_incident` activity: a compensation that cannot finish becomes a row for a person."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert
from temporalio import activity

from core.db import ensure_schema_once
from services.order.tables import incidents, metadata
from workflows.contracts import IncidentRequest
from workflows.ports import IncidentPort

__all__ = ["IncidentActivities"]


class IncidentActivities(IncidentPort):
    """Holds the Order service's engine; idempotent (one row per saga and first failed step)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_schema_once(engine, metadata)  # also adds columns newer than the table (failed_steps)

    @activity.defn(name="open_incident")
    def open_incident(self, request: IncidentRequest) -> None:
        # Plain strings for the database: the driver would write an enum member's name, not its value.
        failed_steps = [str(step) for step in request.failed_steps or [request.failed_step]]
        statement = (
            insert(incidents)
            .values(
                workflow_id=request.workflow_id,
                tenant_id=request.tenant_id,
                order_id=uuid.UUID(request.order_id),
                correlation_id=uuid.UUID(request.correlation_id),
                failed_step=str(request.failed_step),
                completed_steps=[str(step) for step in request.completed_steps],
                failed_steps=failed_steps,
                reason=request.reason,
            )
            .on_conflict_do_nothing(constraint="incidents_workflow_step_key")
        )
        with self.engine.begin() as conn:
            conn.execute(statement)
        activity.logger.warning(
            "incident opened for %s: %s failed (%s)",
            request.workflow_id,
            ", ".join(failed_steps),
            request.reason,
        )
