"""Runs one or more workers in this process until SIGINT/SIGTERM, then stops them gracefully.

Temporal workers run on the asyncio loop; Kafka consumers run in threads (confluent-kafka is
blocking), and so do the outbox relays of Identity, Product, Support and Notification. A stop signal
sets both kinds of stop flag; each worker finishes the message, batch or task in hand, commits, and
closes. While running, the process keeps a heartbeat file under `<state dir>/workers/` so
`cloud-factory stack status` can show worker health (threads alive, and each consumer's parked
records and stuck partitions).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.settings import Settings
from workers.heartbeat import Heartbeat
from workers.kinds import CONSUMER_KINDS, EVERY_KIND, OUTBOX_KINDS, WorkerKind
from workers.options import WorkerOptions

if TYPE_CHECKING:
    from messaging import EventConsumer
    from workers.recipes import ConsumerRecipe

__all__ = ["WorkerKind", "run_workers"]

log = logging.getLogger(__name__)


def _consumer_target(recipe: ConsumerRecipe, options: WorkerOptions,
                     started: list[EventConsumer]) -> Callable[[Settings, threading.Event], None]:
    """The thread body running one consumer of `recipe`; it adds the consumer to `started` (the
    heartbeat reports their health)."""
    from core.tracing import configure_tracing

    def run(settings: Settings, stop: threading.Event) -> None:
        configure_tracing(f"{recipe.kind.value}-worker")
        consumer = recipe.consumer(settings, group_suffix=options.group_suffix, scope=options.scope,
                                   **options.tuning)
        started.append(consumer)
        consumer.run(stop, poll_timeout=recipe.poll_timeout_s)

    return run


def _relay_target(kind: WorkerKind) -> Callable[[Settings, threading.Event], None]:
    from core.tracing import configure_tracing
    from workers.outbox import run_outbox_relay

    def run(settings: Settings, stop: threading.Event) -> None:
        configure_tracing(f"{kind.value}-worker")
        run_outbox_relay(settings, kind.value, stop)

    return run


async def _run(kinds: set[WorkerKind], settings: Settings, ready: Callable[[], None] | None,
               api_port: int | None = None) -> None:
    loop = asyncio.get_running_loop()
    async_stop = asyncio.Event()
    thread_stop = threading.Event()
    options = WorkerOptions.from_env()

    def request_stop() -> None:
        log.info("stop requested; finishing work in hand")
        thread_stop.set()
        async_stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop)

    # Saga-path services run one consumer per partition so orders are handled in parallel.
    from workers.recipes import consumer_recipes

    recipes = [consumer_recipes()[kind] for kind in CONSUMER_KINDS if kind in kinds]
    per_partition = options.replicas or settings.kafka_partitions
    consumers: list[EventConsumer] = []
    threads = [
        threading.Thread(
            target=_consumer_target(recipe, options, consumers),
            args=(settings, thread_stop),
            name=f"{recipe.kind.value}-{index}",
            daemon=False,
        )
        for recipe in recipes
        for index in range(recipe.replicas(per_partition))
    ] + [
        threading.Thread(
            target=_relay_target(kind), args=(settings, thread_stop), name=f"{kind.value}-relay", daemon=False
        )
        for kind in OUTBOX_KINDS
        if kind in kinds
    ]
    for thread in threads:
        thread.start()
    tasks = []
    if WorkerKind.SAGA in kinds:
        from workers.saga import run_saga_worker

        tasks.append(
            asyncio.create_task(run_saga_worker(settings, async_stop, task_queue=options.task_queue))
        )
    if WorkerKind.API in kinds:
        from edge.api.server import run_api

        tasks.append(asyncio.create_task(run_api(settings, async_stop, port=api_port,
                                                 task_queue=options.task_queue)))
    heartbeat = Heartbeat(settings.state_dir, sorted(k.value for k in kinds))
    tasks.append(
        asyncio.create_task(heartbeat.run(async_stop, alive=lambda: all(t.is_alive() for t in threads),
                                          consumers=lambda: [c.health() for c in list(consumers)]))
    )
    if ready:
        ready()
    try:
        await asyncio.gather(*tasks)
    finally:
        thread_stop.set()
        for thread in threads:
            await asyncio.to_thread(thread.join)
        heartbeat.clear()


def run_workers(kind: WorkerKind, settings: Settings, ready: Callable[[], None] | None = None,
                *, api_port: int | None = None) -> None:
    """Run `kind` (`all`: every kind but the API); `api_port` overrides `CF_API_PORT`."""
    kinds = set(EVERY_KIND) if kind is WorkerKind.ALL else {kind}
    asyncio.run(_run(kinds, settings, ready, api_port))
