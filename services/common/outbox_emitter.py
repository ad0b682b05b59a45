"""A service's events written to its outbox (not sent to Kafka): the relay publishes them later.

The emitter signs and encodes the event at once (the record in the outbox is final) and inserts it
in the caller's transaction, next to the domain rows it announces. CLI-driven services start flows
(`new`); consumers such as Notification answer an incoming event (`derive`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Table

import schemas
from messaging.outbox import enqueue, record_for
from services.common.emitter import derived_event, service_event_id

__all__ = ["OutboxEmitter"]


class OutboxEmitter:
    """`new(conn, …)` / `derive(conn, …)` build the envelope and queue its record in `conn`'s
    transaction. With `track=True` (a CLI command) `written` lists the outbox ids this emitter
    queued, so the command can wait for exactly those; a long-running worker keeps no list."""

    def __init__(
        self, service: str, table: Table, keyring: schemas.Keyring, *, env: str, track: bool = True
    ) -> None:
        self.service = service
        self.table = table
        self.keyring = keyring.as_signer(service)  # the service signs its own events, nothing else
        self.env = env
        self.track = track
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
        return self._queue(conn, envelope)

    def derive(
        self,
        conn: Connection,
        parent: schemas.Envelope,
        event_type: str,
        data: schemas.Payload | Mapping[str, Any],
        *,
        key: str,
    ) -> schemas.Envelope:
        """An event caused by `parent` (its tenant and flow), acted by this service, id from `key`."""
        return self._queue(conn, derived_event(self.service, parent, event_type, data, key=key))

    def _queue(self, conn: Connection, envelope: schemas.Envelope) -> schemas.Envelope:
        outbox_id = enqueue(conn, self.table, record_for(envelope, self.keyring, env=self.env))
        if self.track:
            self.written.append(outbox_id)
        return envelope
