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
import enum
import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.settings import Settings
from workers.heartbeat import Heartbeat
from workers.options import WorkerOptions

if TYPE_CHECKING:
    from messaging.consumer import EventConsumer

__all__ = ["CONSUMER_KINDS", "OUTBOX_KINDS", "RELAY_KINDS", "WorkerKind", "run_workers"]

log = logging.getLogger(__name__)


class WorkerKind(enum.StrEnum):
    SAGA = "saga"
    BRIDGE = "bridge"
    PROVISIONING = "provisioning"
    BILLING = "billing"
    NOTIFICATION = "notification"
    IDENTITY = "identity"
    PRODUCT = "product"
    SUPPORT = "support"
    ALL = "all"


CONSUMER_KINDS = (WorkerKind.BRIDGE, WorkerKind.PROVISIONING, WorkerKind.BILLING, WorkerKind.NOTIFICATION)
# Services without subscriptions: their worker relays the service's outbox to Kafka.
RELAY_KINDS = (WorkerKind.IDENTITY, WorkerKind.PRODUCT, WorkerKind.SUPPORT)
# Every kind whose service keeps an outbox: its process runs that outbox's relay.
OUTBOX_KINDS = (*RELAY_KINDS, WorkerKind.NOTIFICATION)


def _consumer_target(kind: WorkerKind, options: WorkerOptions,
                     started: list[EventConsumer]) -> Callable[[Settings, threading.Event], None]:
    """The thread body running one consumer of `kind`; it adds the consumer to `started` (the heartbeat
    reports their health)."""
    from bridges.worker import ORDER_BRIDGE_GROUP
    from core.tracing import configure_tracing
    from workers import consumers
    from workers.notification import NOTIFICATION_GROUP, build_notification_consumer

    def run(settings: Settings, stop: threading.Event) -> None:
        configure_tracing(f"{kind.value}-worker")
        common = {"scope": options.scope, **options.tuning}
        if kind is WorkerKind.BRIDGE:
            consumer = consumers.build_bridge_consumer(
                settings, group_id=options.group(ORDER_BRIDGE_GROUP), **common
            )
        elif kind is WorkerKind.PROVISIONING:
            consumer = consumers.build_provisioning_consumer(
                settings, group_id=options.group(consumers.PROVISIONING_GROUP), **common
            )
        elif kind is WorkerKind.BILLING:
            consumer = consumers.build_billing_consumer(
                settings, group_id=options.group(consumers.BILLING_GROUP), **common
            )
        else:
            consumer = build_notification_consumer(
                settings, group_id=options.group(NOTIFICATION_GROUP), **common
            )
        started.append(consumer)
        fast = kind is not WorkerKind.NOTIFICATION
        consumer.run(stop, poll_timeout=consumers.SAGA_POLL_TIMEOUT_S if fast else 0.5)

    return run


def _relay_target(kind: WorkerKind) -> Callable[[Settings, threading.Event], None]:
    from core.tracing import configure_tracing
    from workers.outbox import run_outbox_relay

    def run(settings: Settings, stop: threading.Event) -> None:
        configure_tracing(f"{kind.value}-worker")
        run_outbox_relay(settings, kind.value, stop)

    return run


async def _run(kinds: set[WorkerKind], settings: Settings, ready: Callable[[], None] | None) -> None:
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
    replicas = {
        kind: 1 if kind is WorkerKind.NOTIFICATION else options.replicas or settings.kafka_partitions
        for kind in CONSUMER_KINDS
    }
    consumers: list[EventConsumer] = []
    threads = [
        threading.Thread(
            target=_consumer_target(kind, options, consumers),
            args=(settings, thread_stop),
            name=f"{kind.value}-{index}",
            daemon=False,
        )
        for kind in CONSUMER_KINDS
        if kind in kinds
        for index in range(replicas[kind])
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


def run_workers(kind: WorkerKind, settings: Settings, ready: Callable[[], None] | None = None) -> None:
    kinds = set(WorkerKind) - {WorkerKind.ALL} if kind is WorkerKind.ALL else {kind}
    asyncio.run(_run(kinds, settings, ready))
