"""The catalog declares exactly the 49 event types of the issue, with the right pub/sub matrix."""

from __future__ import annotations

from collections import Counter

import pytest

from schemas import CatalogEntry, RetryProfile, Service, UnknownEventTypeError, catalog
from schemas.payloads._base import Payload


def test_exactly_49_event_types() -> None:
    assert len(catalog) == 49
    assert len(set(catalog)) == 49


def test_publisher_counts() -> None:
    counts = Counter(entry.publisher for entry in catalog.values())
    assert counts == {
        Service.ORDER: 11,
        Service.PROVISIONING: 8,
        Service.BILLING: 10,
        Service.NOTIFICATION: 2,
        Service.IDENTITY: 5,
        Service.PRODUCT: 6,
        Service.SUPPORT: 7,
    }
    for service, expected in counts.items():
        assert len(catalog.published_by(service)) == expected


def test_subscription_counts() -> None:
    counts = {service: len(catalog.subscriptions(service)) for service in Service}
    assert counts == {
        Service.ORDER: 5,
        Service.PROVISIONING: 2,
        Service.BILLING: 4,
        Service.NOTIFICATION: 24,
        Service.IDENTITY: 0,
        Service.PRODUCT: 0,
        Service.SUPPORT: 0,
    }


def test_subscriptions_match_consumers_field() -> None:
    for service in Service:
        via_lookup = {e.event_type for e in catalog.subscriptions(service.value)}
        via_entries = {t for t, e in catalog.items() if service in e.consumers}
        assert via_lookup == via_entries


def test_specific_routes_from_the_issue() -> None:
    assert catalog["order.fulfilled"].consumers == (Service.BILLING, Service.NOTIFICATION)
    assert catalog["provisioning.completed"].consumers == (
        Service.ORDER,
        Service.BILLING,
        Service.NOTIFICATION,
    )
    refund = catalog["billing.refund-requested"]
    assert refund.publisher is Service.ORDER and refund.domain is Service.BILLING
    assert refund.consumers == (Service.BILLING,)
    assert catalog["order.cancelled"].consumers == (Service.PROVISIONING, Service.NOTIFICATION)
    assert catalog["order.compensation-failed"].consumers == ()


def test_customer_facing_is_exactly_what_notification_consumes() -> None:
    facing = {e.event_type for e in catalog.customer_facing()}
    assert len(facing) == 24
    assert facing == {e.event_type for e in catalog.subscriptions(Service.NOTIFICATION)}
    assert "identity.email-verified" not in facing and "support.ticket-closed" not in facing


def test_event_types_are_namespaced_by_a_known_domain() -> None:
    for event_type, entry in catalog.items():
        assert entry.domain.value == event_type.split(".")[0]
        # Only the saga's refund request is published outside its own namespace.
        if event_type != "billing.refund-requested":
            assert entry.domain is entry.publisher


def test_retry_profiles_follow_the_rule() -> None:
    for event_type, entry in catalog.items():
        money = any(word in event_type for word in ("payment", "refund"))
        infra = "provisioning" in event_type
        if money or infra:
            expected = RetryProfile.CRITICAL
        elif entry.publisher is Service.NOTIFICATION:
            expected = RetryProfile.NON_CRITICAL
        else:
            expected = RetryProfile.DEFAULT
        assert entry.retry_profile is expected, event_type
    assert catalog["order.created"].retry_profile is RetryProfile.DEFAULT


def test_every_entry_has_contiguous_typed_versions() -> None:
    evolved = {t for t, e in catalog.items() if len(e.versions) >= 3}
    assert {"order.created", "provisioning.completed", "billing.refund-requested"} <= evolved
    for entry in catalog.values():
        assert entry.versions == tuple(f"v{i}" for i in range(1, len(entry.versions) + 1))
        assert entry.latest_payload is entry.payloads[entry.latest_version]
        for version, model in entry.payloads.items():
            assert issubclass(model, Payload) and model is not Payload
            assert model.model_fields, f"{model.__name__} has no fields"
            assert catalog.owner_of(model) == (entry, version)


def test_payloads_are_typed_not_dicts() -> None:
    for entry in catalog.values():
        for model in entry.payloads.values():
            for name, field in model.model_fields.items():
                assert field.annotation not in (dict, object), f"{model.__name__}.{name} is untyped"


def test_lookups() -> None:
    assert isinstance(catalog.get("order.created"), CatalogEntry)
    assert catalog.get("order.shipped") is None
    with pytest.raises(UnknownEventTypeError) as info:
        catalog.require("order.shipped")
    assert info.value.field == "eventType"
    with pytest.raises(ValueError):
        catalog.subscriptions("marketing")
    assert catalog.entries()[0].event_type == "order.created"
    assert catalog["order.created"].is_consumed_by("notification")


def test_catalog_rejects_inconsistent_declarations() -> None:
    from schemas._internal.catalog import Catalog, EventSpec
    from schemas._internal.upcasting import UpcasterRegistry
    from schemas.payloads.order import OrderCreatedV1, OrderCreatedV2

    def spec(**overrides: object) -> EventSpec:
        base = dict(
            event_type="order.created",
            publisher=Service.ORDER,
            consumers=(Service.NOTIFICATION,),
            payloads=(OrderCreatedV1,),
            retry_profile=RetryProfile.DEFAULT,
            customer_facing=True,
            summary="s",
        )
        base.update(overrides)
        return EventSpec(**base)  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="Notification"):
        Catalog([spec(customer_facing=False)], UpcasterRegistry())
    with pytest.raises(ValueError, match="no upcaster"):
        Catalog([spec(payloads=(OrderCreatedV1, OrderCreatedV2))], UpcasterRegistry())
    with pytest.raises(ValueError, match="twice"):
        Catalog([spec(), spec(payloads=(OrderCreatedV2,))], UpcasterRegistry())
    stray = UpcasterRegistry()
    stray.register("order.created", "v1")(lambda old: old)
    with pytest.raises(ValueError, match="unknown steps"):
        Catalog([spec()], stray)
    with pytest.raises(ValueError, match="bad event type"):
        Catalog([spec(event_type="Order.Created")], UpcasterRegistry())
