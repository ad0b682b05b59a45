"""The saga worker: hosts `OrderFulfillmentWorkflow`, its `OrderIncident` and their activities on
the orders task queue.

Run any number of replicas; Temporal spreads workflow and activity tasks over them.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from activities.incidents import IncidentActivities
from activities.publishing import PublishingActivities
from bridges.outbound import OutboundBridge
from core.db import engine_for, ensure_schema
from core.settings import Settings
from core.temporal import connect_client
from core.tracing import configure_tracing
from messaging.wiring import ensure_catalog_topics, shared_producer_from
from schemas import Service
from services.order.tables import metadata as order_metadata
from workers.bytecode import ensure_bytecode
from workers.sandbox import PassThroughSandboxRunner
from workflows.order_fulfillment import ORDER_TASK_QUEUE
from workflows.registry import SAGA_WORKFLOWS

__all__ = ["SAGA_WORKFLOW_RUNNER", "build_saga_worker", "run_saga_worker"]

#: The sandbox, with every module passed through: the workflows' modules are imported once per process
#: instead of once per workflow run (the worker's CPU per saga fell from ~103 to ~84 ms, saga/bare
#: throughput from 0.88x to 1.00x, bench/bench_saga.py, 2026-12-07) — and each payload's context
#: asked of the workflow instance directly rather than through the sandbox (`workers.sandbox`; with
#: the shared type adapters of `core.temporal`, ~84 -> 49-69 ms per saga, 2026-12-08). The
#: price: the sandbox still refuses a non-deterministic call (the clock, randomness, I/O) through what
#: workflow code imports during a run, but not through a name its module bound when it was imported
#: (`import datetime` at the top, then `datetime.datetime.now()`). That is refused where the full
#: sandbox runs — the saga's unit tests (tests/unit/test_saga_workflow.py) and the replay tests and
#: `cloud-factory replay` — so it fails before a release; tests/unit/test_saga_runner.py records both
#: sides. The workflow modules keep no mutable module state (every run in the process shares them; the
#: same test file holds them to it).
SAGA_WORKFLOW_RUNNER = PassThroughSandboxRunner()


def build_saga_worker(
    client: Client,
    settings: Settings,
    *,
    task_queue: str = ORDER_TASK_QUEUE,
    max_concurrent_activities: int = 32,
    max_concurrent_local_activities: int = 64,
) -> Worker:
    # No file spool: a broker outage fails the publish activity and Temporal retries it, so the saga
    # never moves on with an event that is only in a local file.
    producer = shared_producer_from(settings, service=Service.ORDER, fallback=False)
    engine = engine_for(settings.dsn)
    ensure_schema(engine, order_metadata)
    publishing = PublishingActivities(OutboundBridge(producer))
    incidents = IncidentActivities(engine)
    ensure_bytecode(SAGA_WORKFLOWS)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(SAGA_WORKFLOWS),
        workflow_runner=SAGA_WORKFLOW_RUNNER,
        activities=[publishing.publish_event, incidents.open_incident, incidents.close_incident],
        # Local activities (each step's publish) run on the same executor: a thread for every slot of
        # both kinds, so a step's publish never queues behind another saga's for a thread.
        activity_executor=ThreadPoolExecutor(
            max_workers=max_concurrent_activities + max_concurrent_local_activities),
        max_concurrent_activities=max_concurrent_activities,
        max_concurrent_local_activities=max_concurrent_local_activities,
    )


async def run_saga_worker(
    settings: Settings, stop: asyncio.Event, *, task_queue: str = ORDER_TASK_QUEUE
) -> None:
    configure_tracing("saga-worker")
    ensure_catalog_topics(settings)
    client = await connect_client(settings)
    worker = build_saga_worker(client, settings, task_queue=task_queue)
    async with worker:
        await stop.wait()
