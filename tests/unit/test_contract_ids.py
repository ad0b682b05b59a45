"""Stable event ids: a pure function of the business key, in the UUIDv4 shape the envelope needs."""

from __future__ import annotations

import uuid

import schemas
from schemas.examples import example_data


def test_same_parts_same_id_and_uuid4_shape() -> None:
    first = schemas.stable_event_id("order-acme-1", "order-created")
    assert first == schemas.stable_event_id("order-acme-1", "order-created")
    assert first.version == 4 and first.variant == uuid.RFC_4122


def test_parts_are_separated_not_concatenated() -> None:
    ids = {
        schemas.stable_event_id("order-acme-1", "order-created"),
        schemas.stable_event_id("order-acme-1order-created"),
        schemas.stable_event_id("order-acme-", "1order-created"),
        schemas.stable_event_id("order-acme-1", "order-fulfilled"),
    }
    assert len(ids) == 4


def test_envelope_accepts_a_stable_id() -> None:
    event_id = schemas.stable_event_id("tests", "envelope")
    envelope = schemas.new_event(
        "notification.sent",
        example_data("notification.sent", "v1"),
        tenant_id="acme",
        correlation_id=uuid.uuid4(),
        actor=schemas.Actor(id="tests", type=schemas.ActorType.SYSTEM),
        producer="tests",
        event_id=event_id,
    )
    assert schemas.decode(schemas.encode(envelope)).event_id == event_id
