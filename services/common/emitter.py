"""Publishing a service's own events with ids that survive redelivery.

A handler may run twice for one input (at-least-once delivery, a crash before the commit). Each
event it emits gets an id derived from a stable business key (e.g. order id + event type + resource
name), so the second run re-sends the *same* event and downstream consumers deduplicate it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

import schemas
from messaging.producer import Delivery, EventProducer

__all__ = ["Emitter", "service_event_id"]


def service_event_id(service: str, key: str) -> uuid.UUID:
    """A UUIDv4-shaped id that is a pure function of (service, business key)."""
    digest = bytearray(hashlib.sha256(f"{service}\x1f{key}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40
    digest[8] = (digest[8] & 0x3F) | 0x80
    return uuid.UUID(bytes=bytes(digest))


class Emitter:
    """One service's producer of derived events (tenant, correlation and causation copied from the cause)."""

    def __init__(self, producer: EventProducer, service: str) -> None:
        self.producer = producer
        self.service = service
        self.actor = schemas.Actor(id=f"{service}-service", type=schemas.ActorType.SERVICE)

    def derive(
        self,
        parent: schemas.Envelope,
        event_type: str,
        data: schemas.Payload | Mapping[str, Any],
        *,
        key: str,
    ) -> Delivery:
        envelope = schemas.derive_event(
            parent,
            event_type,
            data,
            actor=self.actor,
            producer=f"{self.service}-service",
            event_id=service_event_id(self.service, key),
        )
        return self.producer.publish(envelope)

    def new(
        self,
        event_type: str,
        data: schemas.Payload | Mapping[str, Any],
        *,
        tenant_id: str,
        correlation_id: uuid.UUID,
        actor: schemas.Actor,
        key: str,
        causation_id: uuid.UUID | None = None,
    ) -> schemas.Envelope:
        """An event of a flow this service drives itself (CLI publishers); returns what was published."""
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
        self.producer.publish(envelope)
        return envelope
