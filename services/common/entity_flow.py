"""Flows driven by one entity (a user, a product, a ticket): correlationId derived from the entity
id, causation = the entity's previous event (kept on its row), event ids from (entity, step)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Table, update

import schemas
from services.common.outbox_emitter import OutboxEmitter

__all__ = ["flow_id", "publish_step"]

_NS = uuid.UUID("9a7c1e44-2f6b-4d0a-b3c8-5e1f0a2d4c66")


def flow_id(kind: str, entity_id: uuid.UUID | str) -> uuid.UUID:
    return uuid.uuid5(_NS, f"{kind}/{entity_id}")


def publish_step(
    conn: Connection,
    emitter: OutboxEmitter,
    table: Table,
    key_column: str,
    entity_id: Any,
    *,
    kind: str,
    step: str,
    event_type: str,
    data: Mapping[str, Any],
    tenant_id: str,
    actor: schemas.Actor,
    previous: str | None,
    flow_of: Any = None,
) -> schemas.Envelope:
    """Queue the step's event in the service's outbox and record it as the entity's last event, both
    inside `conn`'s transaction (the relay publishes it after the commit). `flow_of` names the flow's
    owner when the row is a child (an API key belongs to its user's flow)."""
    owner = entity_id if flow_of is None else flow_of
    envelope = emitter.new(
        conn,
        event_type,
        data,
        tenant_id=tenant_id,
        correlation_id=flow_id(kind, owner),
        actor=actor,
        key=f"{kind}/{entity_id}/{step}",
        causation_id=uuid.UUID(previous) if previous else None,
    )
    conn.execute(
        update(table).where(table.c[key_column] == entity_id).values(last_event_id=str(envelope.event_id))
    )
    return envelope
