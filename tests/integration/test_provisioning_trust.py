"""Provisioning under attack, on the real Kafka and PostgreSQL with the real consumer: a validly
signed event of another tenant naming an order must not touch that order's resources, and a captured
request sent again after its idempotency key expired must not create anything a second time."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

import schemas
from core.db import engine_for
from core.settings import Settings
from messaging.errors import ErrorClass
from services.provisioning.handler import count_live_resources
from services.provisioning.simulator import clear_faults, inject_fault
from services.provisioning.subscriptions import SUBSCRIPTIONS as PROVISIONING
from services.provisioning.tables import cloud, orders, resources
from tests.support.hostile_support import (
    committed_past,
    dead_letter_of,
    emitted,
    example,
    expire_keys,
    publish,
    resend,
    signed_event,
)
from tests.support.messaging_support import isolated, running
from workers.consumers import build_consumer

pytestmark = pytest.mark.stack

def _emitted(settings: Settings, tenant: str) -> list[schemas.Envelope]:
    return emitted(settings, "provisioning", tenant)


def _start(tenant: str, order_id: uuid.UUID, flow: uuid.UUID, **fields: object) -> schemas.Envelope:
    return signed_event(
        "order.provisioning-started",
        example("order.provisioning-started", orderId=str(order_id), **fields),
        tenant_id=tenant,
        correlation_id=flow,
    )


def _rows(settings: Settings, order_id: uuid.UUID) -> tuple[dict, list[tuple[str, str]], list[tuple]]:
    """The order's row, its resources (name, state) and the provider's records of it."""
    with engine_for(settings.dsn).connect() as conn:
        order = dict(
            conn.execute(
                select(orders.c.tenant_id, orders.c.correlation_id, orders.c.state).where(
                    orders.c.order_id == order_id
                )
            )
            .mappings()
            .one()
        )
        owned = [
            tuple(r)
            for r in conn.execute(
                select(resources.c.name, resources.c.state)
                .where(resources.c.order_id == order_id)
                .order_by(resources.c.seq)
            )
        ]
        provider = [
            tuple(r)
            for r in conn.execute(
                select(cloud.c.name, cloud.c.deleted_at)
                .where(cloud.c.order_id == order_id)
                .order_by(cloud.c.name)
            )
        ]
    return order, owned, provider


def _refs(settings: Settings, tenant: str, order_id: uuid.UUID) -> list[dict]:
    """The resources Provisioning reported created for `order_id`, as an `order.cancelled` lists them."""
    return [
        {
            "resourceId": str(e.data.resource.resource_id),
            "kind": e.data.resource.kind.value,
            "region": e.data.resource.region,
            "name": e.data.resource.name,
        }
        for e in _emitted(settings, tenant)
        if e.event_type == "provisioning.resource-created" and e.data.order_id == order_id
    ]


def test_cross_tenant_event_touches_no_resource(stack, settings: Settings, unique: str) -> None:
    s = isolated(settings, unique)
    tenant_a, tenant_b = f"a-{unique}", f"b-{unique}"
    group = f"provisioning-{unique}"
    order_a, flow_a = uuid.uuid4(), uuid.uuid4()
    consumer = build_consumer(s, PROVISIONING, group_id=group)
    with running(consumer):
        own = publish(s, _start(tenant_a, order_a, flow_a))
        committed_past(s, group, own)
        before = _rows(s, order_a)
        assert before[0]["state"] == "completed" and count_live_resources(engine_for(s.dsn), order_a) == 2
        refs = _refs(s, tenant_a, order_a)
        # Tenant B, from a flow of its own, cancels A's order (releasing A's servers) and asks for one
        # more resource on it.
        cancel = publish(
            s,
            signed_event(
                "order.cancelled",
                example(
                    "order.cancelled", orderId=str(order_a), reason="administrative", resourcesToRelease=refs
                ),
                tenant_id=tenant_b,
                correlation_id=uuid.uuid4(),
            ),
        )
        extra = publish(
            s,
            _start(
                tenant_b,
                order_a,
                uuid.uuid4(),
                resources=[{"kind": "vm", "name": "backdoor", "sku": "VM-STD-4", "quantity": 1}],
            ),
        )
        committed_past(s, group, cancel)
        committed_past(s, group, extra)

    for hostile in (cancel, extra):
        letter = dead_letter_of(s, hostile)
        assert letter.error_class is ErrorClass.PERMISSION, letter.reason
        assert tenant_a in letter.reason and tenant_b in letter.reason, letter.reason
    assert _rows(s, order_a) == before
    assert count_live_resources(engine_for(s.dsn), order_a) == 2
    assert _emitted(s, tenant_b) == []


def test_replay_after_key_expiry_creates_nothing(stack, settings: Settings, unique: str) -> None:
    """Order 1: the database could not be created (no capacity), provisioning failed. Order 2 was
    provisioned, then cancelled: its database was deleted, deleting its server was refused. A day
    later the provider has capacity again and both captured requests arrive once more: nothing is
    created — no database for an order the saga is compensating, no second database for the
    cancelled one — and order 1's failure is re-sent with the same event id."""
    s = isolated(settings, unique)
    tenant, group = f"a-{unique}", f"provisioning-{unique}"
    failed_order, cancelled_order = uuid.uuid4(), uuid.uuid4()
    engine = engine_for(s.dsn)
    inject_fault(engine, failed_order, "orders-db", "permanent")
    inject_fault(engine, cancelled_order, "web-1", "delete")
    starts = {order: _start(tenant, order, uuid.uuid4()) for order in (failed_order, cancelled_order)}
    consumer = build_consumer(s, PROVISIONING, group_id=group)
    with running(consumer):
        sent = {order: publish(s, envelope) for order, envelope in starts.items()}
        for record in sent.values():
            committed_past(s, group, record)
        cancel = publish(
            s,
            signed_event(
                "order.cancelled",
                example(
                    "order.cancelled",
                    orderId=str(cancelled_order),
                    resourcesToRelease=_refs(s, tenant, cancelled_order),
                ),
                tenant_id=tenant,
                correlation_id=starts[cancelled_order].correlation_id,
            ),
        )
        committed_past(s, group, cancel)
        before = {order: _rows(s, order) for order in starts}
        assert before[failed_order][0]["state"] == "failed"
        assert [name for name, _ in before[failed_order][2]] == ["web-1"]
        assert before[cancelled_order][1] == [("web-1", "created"), ("orders-db", "deleted")]
        failed = [e.event_id for e in _emitted(s, tenant) if e.event_type == "provisioning.failed"]
        assert len(failed) == 1
        for order, envelope in starts.items():
            clear_faults(engine, order)
            assert expire_keys(engine, envelope.event_id) >= 1
            committed_past(s, group, resend(s, sent[order]))

    assert {order: _rows(s, order) for order in starts} == before
    emitted = _emitted(s, tenant)
    assert "provisioning.completed" not in {e.event_type for e in emitted if e.data.order_id == failed_order}
    assert {e.event_id for e in emitted if e.event_type == "provisioning.failed"} == set(failed)
