"""Events of flows a CLI-driven service drives itself, written to its outbox (not sent to Kafka).

The emitter signs and encodes the event at once (the record in the outbox is final) and inserts it
in the caller's transaction, next to the domain rows it announces.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Table

import schemas
from services.common.emitter import service_event_id
from services.common.outbox import enqueue, record_for

__all__ = ["OutboxEmitter"]


class OutboxEmitter:
    """`new(conn, …)` builds the envelope and queues its record; `written` lists the outbox ids."""

    def __init__(self, service: str, table: Table, keyring: schemas.Keyring, *, env: str) -> None:
        self.service = service
        self.table = table
        self.keyring = keyring
        self.env = env
        self.written: list[int] = []

    def new(
        self,
        conn: Connection,
        event_type: str,
        data: schemas.Payload | Mapping[str, Any],
        *,
        tenant_id: str,
        correlation_id: uuid.UUID,
        actor: schemas.Actor,
        key: str,
        causation_id: uuid.UUID | None = None,
    ) -> schemas.Envelope:
        envelope = schemas.new_event(
            event_type,
            data,
            tenant_id=tenant_id,
            correlation_id=correlation_id,
            actor=actor,
            producer=f"{self.service}-service",
            causation_id=causation_id,
            event_id=service_event_id(self.service, key),
        )
        self.written.append(enqueue(conn, self.table, record_for(envelope, self.keyring, env=self.env)))
        return envelope
