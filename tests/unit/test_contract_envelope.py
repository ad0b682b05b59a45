"""Envelope strictness and the builders that derive tracing fields."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from pydantic import ValidationError

import schemas
from schemas import Actor, ActorType, ContractError, Envelope, UnknownEventTypeError, derive_event, new_event
from schemas.examples import example_data, example_event
from schemas.payloads.order import OrderCreatedV1, OrderCreatedV3, OrderPaymentConfirmedV1

ACTOR = Actor(id="user-42", type=ActorType.USER)
SAGA = Actor(id="order-saga", type=ActorType.SYSTEM)


def _order_created(**overrides: object) -> Envelope:
    kwargs: dict[str, object] = dict(
        tenant_id="acme", correlation_id=uuid.uuid4(), actor=ACTOR, producer="order"
    )
    kwargs.update(overrides)
    return new_event("order.created", example_data("order.created", "v3"), **kwargs)  # type: ignore[arg-type]


def test_new_event_from_dict_uses_latest_version_and_fresh_metadata() -> None:
    before = dt.datetime.now(dt.UTC)
    event = _order_created()
    assert event.version == "v3"
    assert isinstance(event.data, OrderCreatedV3)
    assert event.event_id.version == 4
    assert event.causation_id is None
    assert before <= event.occurred_at <= dt.datetime.now(dt.UTC)
    assert event.occurred_at.utcoffset() == dt.timedelta(0)
    assert isinstance(event, Envelope)
    assert event.data.total.amount_minor == 9996 and event.data.total.currency == "EUR"


def test_new_event_accepts_snake_case_and_python_objects_in_dicts() -> None:
    data = {
        "order_id": uuid.uuid4(),
        "payment_id": str(uuid.uuid4()),
        "amount": {"amount_minor": 100, "currency": "GBP"},
        "method": "card",
    }
    event = new_event(
        "order.payment-confirmed",
        data,
        tenant_id="t1",
        correlation_id=str(uuid.uuid4()),
        actor={"id": "svc", "type": "service"},
        producer="order",
    )
    assert isinstance(event.data, OrderPaymentConfirmedV1)
    assert event.actor.type is ActorType.SERVICE


def test_payload_instance_decides_the_version() -> None:
    old = OrderCreatedV1.model_validate_json(json.dumps(example_data("order.created", "v1")))
    event = new_event(
        "order.created", old, tenant_id="acme", correlation_id=uuid.uuid4(), actor=ACTOR, producer="order"
    )
    assert event.version == "v1" and event.data is old


def test_payload_of_another_type_is_rejected() -> None:
    wrong = OrderCreatedV1.model_validate_json(json.dumps(example_data("order.created", "v1")))
    with pytest.raises(ContractError) as info:
        new_event(
            "order.failed",
            wrong,
            tenant_id="acme",
            correlation_id=uuid.uuid4(),
            actor=ACTOR,
            producer="order",
        )
    assert info.value.field == "data" and "order.created" in info.value.reason


def test_builder_errors_name_the_field() -> None:
    data = example_data("order.created", "v3")
    data["total"]["currency"] = "euro"
    with pytest.raises(ContractError) as info:
        new_event(
            "order.created",
            data,
            tenant_id="acme",
            correlation_id=uuid.uuid4(),
            actor=ACTOR,
            producer="order",
        )
    assert info.value.field == "data.total.currency"
    with pytest.raises(ContractError) as info:
        _order_created(tenant_id="")
    assert info.value.field == "tenantId"
    with pytest.raises(ContractError) as info:
        _order_created(correlation_id="not-a-uuid")
    assert info.value.field == "correlationId"
    with pytest.raises(ContractError) as info:
        _order_created(actor={"id": "x", "type": "robot"})
    assert info.value.field == "actor.type"
    with pytest.raises(ContractError) as info:
        _order_created(event_id=uuid.uuid1())
    assert info.value.field == "eventId"
    with pytest.raises(ContractError) as info:
        _order_created(occurred_at=dt.datetime(2025, 1, 1))
    assert info.value.field == "occurredAt"
    with pytest.raises(UnknownEventTypeError):
        new_event(
            "order.shipped", {}, tenant_id="acme", correlation_id=uuid.uuid4(), actor=ACTOR, producer="order"
        )


def test_derive_event_copies_tenant_and_correlation_and_sets_causation() -> None:
    parent = _order_created(tenant_id="initech")
    child = derive_event(
        parent,
        "order.payment-confirmed",
        example_data("order.payment-confirmed", "v1"),
        actor=SAGA,
        producer="order",
    )
    assert child.tenant_id == "initech"
    assert child.correlation_id == parent.correlation_id
    assert child.causation_id == parent.event_id
    assert child.event_id != parent.event_id
    grandchild = derive_event(
        child,
        "billing.refund-requested",
        example_data("billing.refund-requested", "v3"),
        actor=SAGA,
        producer="order",
        event_id=uuid.UUID(int=7, version=4),
    )
    assert grandchild.causation_id == child.event_id
    assert grandchild.correlation_id == parent.correlation_id
    assert grandchild.event_id == uuid.UUID(int=7, version=4)


def test_occurred_at_is_normalised_to_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    event = _order_created(occurred_at=dt.datetime(2025, 6, 1, 14, 0, tzinfo=paris))
    assert event.occurred_at == dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
    assert event.occurred_at.utcoffset() == dt.timedelta(0)
    assert b'"occurredAt":"2025-06-01T12:00:00Z"' in schemas.encode(event)


def test_envelope_is_immutable() -> None:
    event = _order_created()
    with pytest.raises(ValidationError):
        event.tenant_id = "other"  # type: ignore[misc]


def test_bare_envelope_is_checked_against_the_catalog() -> None:
    typed = example_event("order.created", "v3")
    fields = {name: getattr(typed, name) for name in Envelope.model_fields}
    bare = Envelope(**fields)
    assert schemas.decode(schemas.encode(bare)) == typed
    with pytest.raises(ValidationError, match="needs OrderCreatedV1"):
        Envelope(**{**fields, "version": "v1"})
    with pytest.raises(ValidationError, match="unknown event type"):
        Envelope(**{**fields, "event_type": "order.shipped"})


def test_wire_names_are_camel_case_only() -> None:
    wire = json.loads(schemas.encode(example_event("order.created")))
    assert list(wire) == [
        "eventId",
        "eventType",
        "version",
        "tenantId",
        "correlationId",
        "causationId",
        "actor",
        "occurredAt",
        "producer",
        "data",
    ]
    assert "customerId" in wire["data"] and "customer_id" not in wire["data"]
