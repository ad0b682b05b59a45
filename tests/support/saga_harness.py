"""Every worker of the platform in this process, isolated for one test module or recording.

A unique tag gives the saga its own task queue, every consumer its own group, and scopes consumers
to tenants `t<tag>-…`, so runs sharing the stack (and the shared topics) never act on each other's
orders.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable

from temporalio.client import Client
from temporalio.worker import Worker

from cloud_factory.faults import place_failing
from core.db import engine_for
from core.settings import Settings
from core.temporal import connect_client
from core.tracing import configure_tracing
from messaging import EventConsumer
from messaging.wiring import ensure_catalog_topics
from services.common import TenantScope
from services.order.api import PlacedOrder, new_order
from services.provisioning.subscriptions import SUBSCRIPTIONS as PROVISIONING
from workers.consumers import build_consumer
from workers.outbox import build_outbox_relay
from workers.recipes import ConsumerRecipe, consumer_recipes
from workers.saga import build_saga_worker
from workflows.contracts import SagaTimings

__all__ = ["SagaHarness", "fast_timings"]


def fast_timings() -> SagaTimings:
    return SagaTimings(
        payment_timeout_s=60, provisioning_timeout_s=60, compensation_windows_s=[2.0, 4.0, 8.0, 16.0]
    )


def _cancels_only_provisioning(settings: Settings, *, group_id: str, scope: TenantScope) -> EventConsumer:
    """The real Provisioning handlers with its create path down: it hears only `order.cancelled`,
    so a saga's provisioning times out with nothing created (and nothing ever will be)."""
    return build_consumer(settings, PROVISIONING.only("order.cancelled"), group_id=group_id, scope=scope)


def _recipes() -> dict[str, ConsumerRecipe]:
    """The platform's consumer kinds by name, and Provisioning with its create path down."""
    recipes: dict[str, ConsumerRecipe] = {kind.value: recipe for kind, recipe in consumer_recipes().items()}
    provisioning = recipes["provisioning"]
    recipes["provisioning-cancels"] = ConsumerRecipe(
        provisioning.kind, provisioning.group_id, _cancels_only_provisioning, provisioning.on_saga_path
    )
    return recipes


class SagaHarness:
    def __init__(
        self,
        settings: Settings,
        tag: str | None = None,
        *,
        saga: bool = True,
        consumers: tuple[str, ...] = ("bridge", "provisioning", "billing", "notification"),
    ) -> None:
        self.settings = settings
        self.tag = tag or uuid.uuid4().hex[:10]
        self.task_queue = f"saga-{self.tag}"
        self.tenant_prefix = f"t{self.tag}-"
        self.engine = engine_for(settings.dsn)
        self.saga = saga
        self.consumer_kinds = consumers
        self.client: Client | None = None
        self._worker: Worker | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def tenant(self, name: str = "a") -> str:
        return f"{self.tenant_prefix}{name}"

    def _start(self, target: Callable[..., None], name: str, **kwargs: object) -> None:
        thread = threading.Thread(target=target, args=(self._stop,), kwargs=kwargs, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    async def __aenter__(self) -> SagaHarness:
        configure_tracing("tests")
        # Every topic of the catalog, as `stack up` leaves a deployment: a test that reads a topic no
        # worker of its own subscribes to must not depend on an earlier test having created it.
        await asyncio.to_thread(ensure_catalog_topics, self.settings)
        recipes = [_recipes()[kind] for kind in self.consumer_kinds]
        scope, suffix = TenantScope(self.tenant_prefix), f"-{self.tag}"
        consumers = await asyncio.gather(*(
            asyncio.to_thread(recipe.consumer, self.settings, group_suffix=suffix, scope=scope)
            for recipe in recipes
        ))
        for kind, recipe, consumer in zip(self.consumer_kinds, recipes, consumers, strict=True):
            self._start(consumer.run, f"{kind}-{self.tag}", poll_timeout=recipe.poll_timeout_s)
        for recipe in recipes:  # their reports wait in the service's outbox until relayed
            if recipe.relay is not None:
                relay = await asyncio.to_thread(build_outbox_relay, self.settings, recipe.relay)
                self._start(relay.run, f"relay-{self.tag}")
        self.client = await connect_client(self.settings)
        if self.saga:
            self._worker = build_saga_worker(self.client, self.settings, task_queue=self.task_queue)
            await self._worker.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._worker is not None:
            await self._worker.__aexit__(None, None, None)
        self._stop.set()
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 30)

    async def place(
        self,
        tenant: str = "a",
        *,
        fail_at: str | None = None,
        pay: bool = True,
        timings: SagaTimings | None = None,
        plan_id: str = "vm-standard-2",
    ) -> PlacedOrder:
        """Place an order of tenant `tenant`, the simulators armed to fail it at `fail_at`."""
        assert self.client is not None
        order = new_order(self.tenant(tenant), plan_id, timings=timings or fast_timings())
        return await place_failing(
            self.client, self.engine, order, fail_at, pay=pay, task_queue=self.task_queue
        )
