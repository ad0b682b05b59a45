"""Incidents: a saga whose compensation could not finish becomes a row a person works through.

One row per saga and first failed step (`incidents_workflow_step_key`), so a retried activity or a
replayed saga opens it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Engine, func, update
from sqlalchemy.dialects.postgresql import insert

from core.db import ensure_schema_once
from services.order.tables import incidents, metadata

__all__ = ["close_incident", "record_incident"]


def record_incident(engine: Engine, *, workflow_id: str, tenant_id: str, order_id: str, correlation_id: str,
                    failed_step: str, failed_steps: Sequence[str],
                    completed_steps: Sequence[str], reason: str) -> None:
    """Open the incident (idempotent; a later round of the same saga updates its failures). Steps are
    plain strings: the driver would write an enum member's name, not its value."""
    ensure_schema_once(engine, metadata)  # also adds columns newer than the table (failed_steps)
    statement = (
        insert(incidents)
        .values(
            workflow_id=workflow_id,
            tenant_id=tenant_id,
            order_id=uuid.UUID(order_id),
            correlation_id=uuid.UUID(correlation_id),
            failed_step=str(failed_step),
            completed_steps=[str(step) for step in completed_steps],
            failed_steps=[str(step) for step in failed_steps],
            reason=reason,
        )
    )
    # A person's retry that failed again updates the saga's one row with that round's failures.
    statement = statement.on_conflict_do_update(
        constraint="incidents_workflow_step_key",
        set_={"failed_steps": statement.excluded.failed_steps,
              "completed_steps": statement.excluded.completed_steps,
              "reason": statement.excluded.reason},
        where=incidents.c.state == "open",
    )
    with engine.begin() as conn:
        conn.execute(statement)


def close_incident(engine: Engine, *, workflow_id: str, failed_step: str, resolution: str, note: str = "",
                   closed_by: str = "") -> int:
    """Close the saga's open incident with how it ended (idempotent: a closed row stays as it was
    closed). Returns the rows closed (0 on a repeat)."""
    ensure_schema_once(engine, metadata)
    statement = (
        update(incidents)
        .where(incidents.c.workflow_id == workflow_id, incidents.c.failed_step == str(failed_step),
               incidents.c.state == "open")
        .values(state="closed", resolution=resolution, note=note or None, closed_by=closed_by or None,
                closed_at=func.now())
    )
    with engine.begin() as conn:
        return conn.execute(statement).rowcount
