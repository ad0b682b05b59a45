"""Every worker kind inside the calling process (the demo, benchmarks): consumers (and Notification's
outbox relay) in threads and the saga worker on the caller's asyncio loop. Same recipes as
`cloud-factory worker`, same isolation knobs (task queue, group ids, tenant scope)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from temporalio.client import Client
from temporalio.worker import Worker

from core.settings import Settings
from core.temporal import connect_client
from services.common import ALL_TENANTS, TenantScope
from workers.kinds import WorkerKind
from workers.outbox import build_outbox_relay
from workers.recipes import ConsumerRecipe, consumer_recipes
from workers.saga import build_saga_worker
from workflows.order_fulfillment import ORDER_TASK_QUEUE

__all__ = ["InProcessWorkers"]


class InProcessWorkers:
    def __init__(
        self,
        settings: Settings,
        *,
        task_queue: str = ORDER_TASK_QUEUE,
        group_suffix: str = "",
        scope: TenantScope = ALL_TENANTS,
        notification: bool = True,
        replicas: int = 3,
        consumers: bool = True,
    ) -> None:
        self.settings = settings
        self.task_queue = task_queue
        self.group_suffix = group_suffix
        self.scope = scope
        self.notification = notification
        self.with_consumers = consumers  # False: only the saga worker (services run elsewhere)
        self.replicas = replicas  # consumers per saga-path service (a group uses at most one per partition)
        self.client: Client | None = None
        self._worker: Worker | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _recipes(self) -> list[ConsumerRecipe]:
        if not self.with_consumers:
            return []
        return [recipe for kind, recipe in consumer_recipes().items()
                if self.notification or kind is not WorkerKind.NOTIFICATION]

    def _start(self, target: Callable[..., None], name: str, **kwargs: object) -> None:
        """Run `target(stop, **kwargs)` in a daemon thread until the stop flag is set."""
        thread = threading.Thread(target=target, args=(self._stop,), kwargs=kwargs, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    async def __aenter__(self) -> InProcessWorkers:
        recipes = [r for r in self._recipes() for _ in range(r.replicas(self.replicas))]
        consumers = await asyncio.gather(*(
            asyncio.to_thread(r.consumer, self.settings, group_suffix=self.group_suffix, scope=self.scope)
            for r in recipes
        ))
        for recipe, consumer in zip(recipes, consumers, strict=True):
            self._start(consumer.run, recipe.kind.value, poll_timeout=recipe.poll_timeout_s)
        for recipe in self._recipes():  # their reports wait in the service's outbox until relayed
            if recipe.relay is not None:
                relay = await asyncio.to_thread(build_outbox_relay, self.settings, recipe.relay)
                self._start(relay.run, f"{recipe.relay}-relay")
        self.client = await connect_client(self.settings)
        self._worker = build_saga_worker(
            self.client, self.settings, task_queue=self.task_queue, max_concurrent_activities=64
        )
        await self._worker.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._worker is not None:
            await self._worker.__aexit__(None, None, None)
        self._stop.set()
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 30)
