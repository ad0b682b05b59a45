"""Runs one or more workers in this process until SIGINT/SIGTERM, then stops them gracefully.

Temporal workers run on the asyncio loop; Kafka consumers run in threads (confluent-kafka is
blocking). A stop signal sets both kinds of stop flag; each worker finishes the message or task in
hand, commits, and closes.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import signal
import threading
from collections.abc import Callable

from cloud_factory.settings import Settings

__all__ = ["WorkerKind", "run_workers"]

log = logging.getLogger(__name__)


class WorkerKind(enum.StrEnum):
    SAGA = "saga"
    NOTIFICATION = "notification"
    ALL = "all"


def _consumer_workers(kinds: set[WorkerKind]) -> list[tuple[str, Callable[[Settings, threading.Event], None]]]:
    from workers.notification import run_notification_worker

    table = {WorkerKind.NOTIFICATION: run_notification_worker}
    return [(kind.value, table[kind]) for kind in table if kind in kinds]


async def _run(kinds: set[WorkerKind], settings: Settings, ready: Callable[[], None] | None) -> None:
    loop = asyncio.get_running_loop()
    async_stop = asyncio.Event()
    thread_stop = threading.Event()

    def request_stop() -> None:
        log.info("stop requested; finishing work in hand")
        thread_stop.set()
        async_stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_stop)

    threads = [threading.Thread(target=target, args=(settings, thread_stop), name=name, daemon=False)
               for name, target in _consumer_workers(kinds)]
    for thread in threads:
        thread.start()
    tasks = []
    if WorkerKind.SAGA in kinds:
        from workers.saga import run_saga_worker

        tasks.append(asyncio.create_task(run_saga_worker(settings, async_stop)))
    if ready:
        ready()
    try:
        if tasks:
            await asyncio.gather(*tasks)
        else:
            await async_stop.wait()
    finally:
        thread_stop.set()
        for thread in threads:
            await asyncio.to_thread(thread.join)


def run_workers(kind: WorkerKind, settings: Settings, ready: Callable[[], None] | None = None) -> None:
    kinds = set(WorkerKind) - {WorkerKind.ALL} if kind is WorkerKind.ALL else {kind}
    asyncio.run(_run(kinds, settings, ready))
