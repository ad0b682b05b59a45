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

__all__ = ["Emitter", "derived_event", "service_event_id"]


def service_event_id(service: str, key: str) -> uuid.UUID:
    """The id of an event this service emits for business key `key` (same key → same event)."""
    return schemas.stable_event_id(service, key)


def derived_event(
    service: str,
    parent: schemas.Envelope,
    event_type: str,
    data: schemas.Payload | Mapping[str, Any],
    *,
    key: str,
) -> schemas.Envelope:
    """The event `service` emits in answer to `parent` (its tenant and flow, causation = `parent`),
    acted by the service itself, its id derived from `key`. Shared by the direct and outbox emitters."""
    return schemas.derive_event(
        parent,
        event_type,
        data,
        actor=schemas.Actor(id=f"{service}-service", type=schemas.ActorType.SERVICE),
        producer=f"{service}-service",
        event_id=service_event_id(service, key),
    )


class Emitter:
    """One service's producer of derived events (tenant, correlation and causation copied from the cause)."""

    def __init__(self, producer: EventProducer, service: str) -> None:
        signer = producer.keyring.signer
        if signer is None or signer.value != service:
            raise ValueError(f"the {service} emitter needs a producer signing as {service}, not as {signer}")
        self.producer = producer
        self.service = service

    def derive(
        self,
        parent: schemas.Envelope,
        event_type: str,
        data: schemas.Payload | Mapping[str, Any],
        *,
        key: str,
    ) -> Delivery:
        return self.producer.publish(derived_event(self.service, parent, event_type, data, key=key))
