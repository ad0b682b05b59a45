"""Services of one shape: each consuming service declares its subscriptions next to its handlers, the
worker kinds and consumer recipes are derived from them, and the names operators and Kafka know
(worker kinds, consumer group ids) stay what they were."""

from __future__ import annotations

import dataclasses

import pytest

import schemas
from cloud_factory.faults import FAIL_POINTS, arm_failure
from messaging.handlers import HandlerSpec
from schemas import Service
from workers.consumers import subscriptions_of
from workers.kinds import (
    CONSUMER_KINDS,
    CONSUMING_SERVICES,
    EVERY_KIND,
    OUTBOX_KINDS,
    RELAY_KINDS,
    WorkerKind,
)
from workers.recipes import SAGA_POLL_TIMEOUT_S, consumer_recipes


def test_worker_kinds_are_the_services_plus_order_s_two_halves() -> None:
    assert [k.value for k in WorkerKind] == [
        "saga", "bridge", "provisioning", "billing", "notification", "identity", "product", "support", "api",
        "all"]
    assert EVERY_KIND == set(WorkerKind) - {WorkerKind.API, WorkerKind.ALL}  # the edge runs on its own
    assert CONSUMER_KINDS == (WorkerKind.BRIDGE, WorkerKind.PROVISIONING, WorkerKind.BILLING,
                              WorkerKind.NOTIFICATION)
    assert RELAY_KINDS == (WorkerKind.IDENTITY, WorkerKind.PRODUCT, WorkerKind.SUPPORT)
    assert OUTBOX_KINDS == (*RELAY_KINDS, WorkerKind.NOTIFICATION)


@pytest.mark.parametrize("service", CONSUMING_SERVICES, ids=str)
def test_each_consuming_service_declares_what_the_catalog_routes_to_it(service: Service) -> None:
    subscriptions = subscriptions_of(service)
    assert subscriptions.service is service
    assert subscriptions.group_id == service.value  # consumer group ids never change
    routed = {entry.event_type for entry in schemas.catalog.subscriptions(service)}
    assert set(subscriptions.event_types) <= routed, "a handler for an event the catalog does not route here"


def test_notification_hears_every_customer_facing_event_in_its_transaction() -> None:
    notification = subscriptions_of(Service.NOTIFICATION)
    assert set(notification.event_types) == {e.event_type for e in schemas.catalog.customer_facing()}
    assert notification.transactional and notification.outbox is not None


def test_bound_routes_call_the_handler_object_s_methods() -> None:
    class Handlers:
        def on_cancelled(self, envelope: object, context: object) -> tuple[object, object, object]:
            return self, envelope, context

    provisioning = subscriptions_of(Service.PROVISIONING)
    narrowed = provisioning.only("order.cancelled")
    assert narrowed.event_types == ("order.cancelled",) and narrowed.group_id == provisioning.group_id
    with pytest.raises(ValueError, match="does not subscribe"):
        provisioning.only("order.created")
    with pytest.raises(ValueError, match="no outbox"):
        provisioning.with_outbox(subscriptions_of(Service.NOTIFICATION).schema.tables["notification.outbox"])
    ours = dataclasses.replace(narrowed, routes={"order.cancelled": Handlers.on_cancelled})
    handlers = Handlers()
    (spec,) = ours.bind(handlers).values()
    assert isinstance(spec, HandlerSpec) and spec.name is None and not spec.transactional
    assert spec.handler("envelope", "context") == (handlers, "envelope", "context")


def test_consumer_recipes_keep_group_ids_and_poll_timeouts() -> None:
    recipes = consumer_recipes()
    assert list(recipes) == list(CONSUMER_KINDS)
    assert {k.value: r.group_id for k, r in recipes.items()} == {
        "bridge": "order-bridge", "provisioning": "provisioning", "billing": "billing",
        "notification": "notification"}
    brief = [k for k, r in recipes.items() if r.poll_timeout_s == SAGA_POLL_TIMEOUT_S]
    assert brief == [WorkerKind.BRIDGE, WorkerKind.PROVISIONING, WorkerKind.BILLING]
    assert recipes[WorkerKind.NOTIFICATION].replicas(per_partition=3) == 1
    assert recipes[WorkerKind.BILLING].replicas(per_partition=3) == 3
    assert {k: r.relay for k, r in recipes.items() if r.relay} == {WorkerKind.NOTIFICATION: "notification"}


def test_an_unknown_fail_point_is_refused_before_anything_is_armed() -> None:
    assert set(FAIL_POINTS) >= {"payment", "network", "disk", "vps", "transient", "refund", "deprovision"}
    with pytest.raises(ValueError, match="--fail-at 'nowhere'"):
        arm_failure(None, "00000000-0000-4000-8000-000000000000", "nowhere")  # type: ignore[arg-type]
