"""One signed event through all three real services: Temporal → Kafka → Notification → PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import func, select

import schemas
from bridges.outbound import step_event_id
from cloud_factory.demo import read_record, wait_for_notifications
from core.db import engine_for
from core.settings import Settings
from core.temporal import connect_client
from core.tracing import configure_tracing
from messaging import EventConsumer, HandlerContext
from messaging.wiring import producer_from
from services.notification.subscriptions import SUBSCRIPTIONS as NOTIFICATION
from services.notification.tables import notifications
from workers.consumers import build_consumer
from workers.saga import build_saga_worker
from workflows.contracts import CancelRequest, OrderRequest, PublishedEvent
from workflows.order_fulfillment import OrderFulfillmentWorkflow

pytestmark = pytest.mark.stack

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def _order(unique: str) -> OrderRequest:
    return OrderRequest(tenant_id=f"t-{unique}", order_id=str(uuid.uuid4()), customer_id=str(uuid.uuid4()),
                        plan_id="vm-standard-2", region="eu-west-1", amount_minor=2900, tax_minor=551)


def _order_created(order: OrderRequest) -> schemas.Envelope:
    """An `order.created` for `order`, as a test publisher outside the saga would send it."""
    return schemas.new_event("order.created", order.created_payload(), tenant_id=order.tenant_id,
                             correlation_id=uuid.UUID(order.correlation_id),
                             actor=schemas.Actor(id="tests", type=schemas.ActorType.SYSTEM),
                             producer="order-service")


async def _run_order(settings: Settings, order: OrderRequest, task_queue: str) -> PublishedEvent:
    """Place the order, take its `order.created`, then cancel it (the saga now waits for payment)."""
    client = await connect_client(settings)
    async with build_saga_worker(client, settings, task_queue=task_queue):
        handle = await client.start_workflow(OrderFulfillmentWorkflow.run, order, id=order.workflow_id,
                                             task_queue=task_queue)
        deadline = time.monotonic() + 30
        while not (timeline := await handle.query(OrderFulfillmentWorkflow.timeline)):
            assert time.monotonic() < deadline, "order.created was never published"
            await asyncio.sleep(0.1)
        await handle.signal(OrderFulfillmentWorkflow.cancel, CancelRequest())
        result = await asyncio.wait_for(handle.result(), 120)  # a stuck saga fails here, named
    assert result.status == "cancelled"
    first = timeline[0]
    assert first.direction == "out" and first.event_type == "order.created"
    return PublishedEvent(first.event_id, first.event_type, first.topic, first.partition, first.offset)


def _committed(settings: Settings, group: str, topic: str, partition: int) -> int:
    probe = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": group})
    try:
        [tp] = probe.committed([TopicPartition(topic, partition)], timeout=10)
        return tp.offset
    finally:
        probe.close()


@pytest.fixture
def notification_consumer(stack, settings: Settings, unique: str) -> Iterator[EventConsumer]:
    consumer = build_consumer(settings, NOTIFICATION, group_id=f"notification-test-{unique}")
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    consumer._test_group = f"notification-test-{unique}"  # type: ignore[attr-defined]
    thread.start()
    yield consumer
    stop.set()
    thread.join(30)


def test_order_created_signed_delivered_and_recorded(stack, settings: Settings, unique: str,
                                                     notification_consumer: EventConsumer) -> None:
    configure_tracing("tests")
    order = _order(unique)
    published = asyncio.run(_run_order(settings, order, task_queue=f"orders-{unique}"))

    # The event id is a pure function of the workflow step.
    assert published.event_id == str(step_event_id(order.workflow_id, "order-created"))
    assert published.topic == f"cloud-factory.{settings.env}.order.created.v1"

    key, value, headers = read_record(settings, published)
    header = {name: raw.decode() for name, raw in headers}

    # Key = correlationId, so the whole flow stays on one partition.
    assert key.decode() == order.correlation_id

    # HMAC-SHA256 with Order's own key over the signed time and the exact value bytes, recomputed here
    # from the stack's key file independently of the platform code.
    entries = [line.split(":", 1) for line in settings.development_keys_path.read_text().splitlines()
               if line.startswith("order/")]
    kid, secret = entries[0][0].removeprefix("order/"), entries[0][1]
    assert header["x-cf-key-id"] == kid
    signed = header["x-cf-signed-at"].encode() + b"\n" + value
    assert (header["x-cf-signature"]
            == "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest())

    wire = json.loads(value)
    assert wire["eventId"] == published.event_id and uuid.UUID(wire["eventId"]).version == 4
    assert wire["eventType"] == "order.created" and wire["version"] == "v3"
    assert wire["tenantId"] == order.tenant_id
    assert wire["correlationId"] == order.correlation_id
    assert wire["causationId"] is None
    assert wire["actor"] == {"id": "order-service", "type": "service"}
    assert wire["data"]["orderId"] == order.order_id
    assert wire["data"]["total"] == {"amountMinor": 3451, "currency": "EUR"}

    traceparent = TRACEPARENT.match(header["traceparent"])
    assert traceparent, header["traceparent"]

    # The Notification service verified it, stored one message per channel, continued the trace…
    assert wait_for_notifications(settings, published.event_id) == 2
    with engine_for(settings.dsn).connect() as conn:
        rows = conn.execute(select(notifications).where(
            notifications.c.event_id == uuid.UUID(published.event_id))).mappings().all()
    assert {row["channel"] for row in rows} == {"email", "in_app"}
    assert {row["trace_id"] for row in rows} == {traceparent.group(1)}
    assert all(row["correlation_id"] == uuid.UUID(order.correlation_id) for row in rows)

    # …and committed exactly past that record.
    group = notification_consumer._test_group  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while _committed(settings, group, published.topic, published.partition) <= published.offset:
        assert time.monotonic() < deadline, "offset never committed"
        time.sleep(0.2)


def test_offset_committed_only_after_row_written(stack, settings: Settings, unique: str) -> None:
    """A handler that fails leaves the offset uncommitted; the redelivery writes the row once."""
    configure_tracing("tests")
    order = _order(unique)
    producer = producer_from(settings, service="order")
    envelope = _order_created(order)
    delivery = producer.publish(envelope)
    group = f"notification-crash-{unique}"
    consumer = build_consumer(settings, NOTIFICATION, group_id=group)
    real = consumer.handlers["order.created"]  # a transactional HandlerSpec
    calls: list[str] = []

    def failing_once(env: schemas.Envelope, ctx: HandlerContext) -> None:
        if env.event_id == envelope.event_id:
            calls.append("call")
            if len(calls) == 1:
                raise ConnectionError("database went away")
        real.handler(env, ctx)

    consumer.handlers["order.created"] = replace(real, handler=failing_once)
    engine = engine_for(settings.dsn)
    count = (select(func.count()).select_from(notifications)
             .where(notifications.c.event_id == envelope.event_id))
    try:
        deadline = time.monotonic() + 60
        while not calls:
            consumer.poll_once(0.5)
            assert time.monotonic() < deadline, "the event never reached the handler"
        # Failed once: no row, no commit past the record.
        with engine.connect() as conn:
            assert conn.execute(count).scalar_one() == 0
        assert _committed(settings, group, delivery.topic, delivery.partition) <= delivery.offset
        while len(calls) < 2:
            consumer.poll_once(0.5)
            assert time.monotonic() < deadline, "the failed event was never redelivered"
    finally:
        consumer.close()
    with engine.connect() as conn:
        assert conn.execute(count).scalar_one() == 2
    # Committed past the record now (later records of the partition may be committed with it).
    assert _committed(settings, group, delivery.topic, delivery.partition) >= delivery.offset + 1


def test_tampered_record_goes_to_dlq_not_to_the_table(stack, settings: Settings, unique: str,
                                                      notification_consumer: EventConsumer) -> None:
    order = _order(unique)
    producer = producer_from(settings, service="order")
    envelope = _order_created(order)
    value = schemas.encode(envelope)
    headers = producer.keyring.sign(value) + [("x-cf-event-type", b"order.created")]
    tampered = value.replace(b'"amountMinor":2900', b'"amountMinor":1')
    assert tampered != value
    topic = schemas.topic_for("order.created", env=settings.env)
    delivery = producer.publish_raw(topic, key=order.correlation_id.encode(), value=tampered, headers=headers)

    dlq = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": f"dlq-reader-{unique}",
                    "auto.offset.reset": "earliest"})
    dlq.subscribe([schemas.dlq_topic_for("order.created", env=settings.env)])
    found = None
    deadline = time.monotonic() + 60
    try:
        while found is None and time.monotonic() < deadline:
            msg = dlq.poll(0.5)
            if msg is not None and not msg.error() and msg.value() == tampered:
                found = {k: v.decode() for k, v in msg.headers()}
    finally:
        dlq.close()
    assert found is not None, "tampered record did not reach the DLQ"
    assert found["x-cf-dlq-original"] == f"{topic}/{delivery.partition}/{delivery.offset}"
    assert "signature" in found["x-cf-dlq-reason"].lower()
    with engine_for(settings.dsn).connect() as conn:
        assert conn.execute(select(func.count()).select_from(notifications).where(
            notifications.c.event_id == envelope.event_id)).scalar_one() == 0
