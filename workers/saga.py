"""The saga worker: hosts `OrderFulfillmentWorkflow` and its activities on the orders task queue.

Run any number of replicas; Temporal spreads workflow and activity tasks over them.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.worker import Worker

from activities.publishing import PublishingActivities
from cloud_factory.settings import Settings
from cloud_factory.tracing import configure_tracing
from messaging.wiring import ensure_catalog_topics, producer_from
from workflows.order_fulfillment import ORDER_TASK_QUEUE, OrderFulfillmentWorkflow

__all__ = ["connect_client", "build_saga_worker", "run_saga_worker"]


async def connect_client(settings: Settings) -> Client:
    """A Temporal client whose calls carry the OpenTelemetry context into workflows and activities."""
    return await Client.connect(settings.temporal_target, namespace=settings.temporal_namespace,
                                interceptors=[TracingInterceptor()])


def build_saga_worker(client: Client, settings: Settings, *, task_queue: str = ORDER_TASK_QUEUE) -> Worker:
    producer = producer_from(settings)
    activities = PublishingActivities(producer)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[OrderFulfillmentWorkflow],
        activities=[activities.publish_event],
        activity_executor=ThreadPoolExecutor(max_workers=16),
    )


async def run_saga_worker(settings: Settings, stop: asyncio.Event) -> None:
    configure_tracing("saga-worker")
    ensure_catalog_topics(settings)
    client = await connect_client(settings)
    worker = build_saga_worker(client, settings)
    async with worker:
        await stop.wait()
