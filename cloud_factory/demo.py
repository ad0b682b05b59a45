"""The main job: one order through the real stack, end to end, shown as it happens.

Workers run inside this process (the saga worker on the asyncio loop, the Notification consumer
in a thread); the order workflow publishes a signed `order.created`; the Notification service
verifies it and records its messages in PostgreSQL; this job then reads the record back from
Kafka, verifies it again and prints it with the Temporal Web UI link.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import select

import schemas
from cloud_factory.db import engine_for
from cloud_factory.settings import Settings
from cloud_factory.tracing import configure_tracing
from messaging.wiring import ensure_catalog_topics, keyring_from
from services.notification.tables import notifications
from workers.notification import build_notification_consumer
from workers.saga import build_saga_worker, connect_client
from workflows.contracts import OrderRequest, OrderResult, PublishedEvent
from workflows.order_fulfillment import ORDER_TASK_QUEUE, OrderFulfillmentWorkflow

__all__ = ["DemoOutcome", "run_demo"]


@dataclass
class DemoOutcome:
    order: OrderRequest
    result: OrderResult
    published: PublishedEvent
    envelope: schemas.Envelope
    headers: dict[str, str]
    signature: schemas.SignatureCheck
    notification_rows: int
    ui_url: str


def read_record(settings: Settings, published: PublishedEvent) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """The exact record the activity produced: (key, value, headers)."""
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": f"demo-reader-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(published.topic, published.partition, published.offset)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error() and msg.offset() == published.offset:
                return msg.key(), msg.value(), list(msg.headers() or [])
        raise TimeoutError(f"record {published.topic}[{published.partition}]@{published.offset} not readable")
    finally:
        consumer.close()


def wait_for_notifications(settings: Settings, event_id: str, *, timeout: float = 60) -> int:
    engine = engine_for(settings.dsn)
    deadline = time.monotonic() + timeout
    query = select(notifications.c.id).where(notifications.c.event_id == uuid.UUID(event_id))
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            rows = len(conn.execute(query).all())
        if rows:
            return rows
        time.sleep(0.2)
    raise TimeoutError(f"no notification recorded for event {event_id} within {timeout:.0f}s")


def ui_link(settings: Settings, workflow_id: str) -> str:
    return f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"


async def run_demo(settings: Settings, *, say=print) -> DemoOutcome:
    configure_tracing("demo")
    say("creating topics for the event catalog")
    ensure_catalog_topics(settings)
    stop = threading.Event()
    consumer = build_notification_consumer(settings)
    consumer_thread = threading.Thread(target=consumer.run, args=(stop,), name="notification", daemon=True)
    consumer_thread.start()
    client = await connect_client(settings)
    order = OrderRequest(tenant_id="acme", order_id=str(uuid.uuid4()), customer_id=str(uuid.uuid4()),
                         plan_id="vm-standard-2", region="eu-west-1", amount_minor=2900, tax_minor=551)
    try:
        async with build_saga_worker(client, settings):
            say(f"placing order {order.order_id} (workflow {order.workflow_id})")
            result: OrderResult = await client.execute_workflow(
                OrderFulfillmentWorkflow.run, order, id=order.workflow_id, task_queue=ORDER_TASK_QUEUE)
            handle = client.get_workflow_handle(order.workflow_id)
            [published] = await handle.query(OrderFulfillmentWorkflow.timeline)
            say(f"workflow published {published.event_type} to {published.topic}"
                f"[{published.partition}]@{published.offset}")
            rows = await asyncio.to_thread(wait_for_notifications, settings, published.event_id)
            say(f"notification service recorded {rows} message(s) and committed the offset")
    finally:
        stop.set()
        await asyncio.to_thread(consumer_thread.join, 30)
    key, value, headers = await asyncio.to_thread(read_record, settings, published)
    check = keyring_from(settings).verify(value, headers)
    envelope = schemas.decode(value)
    shown = {name: (v.decode() if v is not None else "") for name, v in headers}
    shown["key"] = key.decode()
    return DemoOutcome(order, result, published, envelope, shown, check, rows, ui_link(settings, order.workflow_id))
