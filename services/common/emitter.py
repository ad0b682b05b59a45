"""Publishing a service's own events with ids that survive redelivery.

A handler may run twice for one input (at-least-once delivery, a crash before the commit). Each
event it emits gets an id derived from a stable business key (e.g. order id + event type + resource
name), so the second run re-sends the *same* event and downstream consumers deduplicate it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import schemas
from messaging.producer import Delivery, EventProducer

__all__ = ["Emitter", "service_event_id"]


def service_event_id(service: str, key: str) -> uuid.UUID:
    """The id of an event this service emits for business key `key` (same key → same event)."""
    return schemas.stable_event_id(service, key)


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
