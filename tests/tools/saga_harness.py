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

from core.db import engine_for, ensure_schema
from core.settings import Settings
from core.temporal import connect_client
from core.tracing import configure_tracing
from messaging import EventConsumer
from messaging.wiring import producer_from
from services.common import Emitter, TenantScope
from services.order.api import PlacedOrder, new_order, place_order
from services.provisioning import tables as provisioning_tables
from services.provisioning.handler import ProvisioningHandlers
from services.provisioning.simulator import SimulatedProvider
from workers.consumers import (
    SAGA_POLL_TIMEOUT_S,
    build_billing_consumer,
    build_bridge_consumer,
    build_provisioning_consumer,
    consumer_for,
)
from workers.notification import build_notification_consumer
from workers.outbox import build_outbox_relay
from workers.saga import build_saga_worker
from workflows.contracts import SagaTimings

__all__ = ["SagaHarness", "fast_timings"]


def fast_timings() -> SagaTimings:
    return SagaTimings(
        payment_timeout_s=60, provisioning_timeout_s=60, compensation_windows_s=[2.0, 4.0, 8.0, 16.0]
    )


def _cancels_only_provisioning(settings: Settings, group_id: str, scope: TenantScope) -> EventConsumer:
    """The real Provisioning handlers with its create path down: it hears only `order.cancelled`,
    so a saga's provisioning times out with nothing created (and nothing ever will be)."""
    engine = engine_for(settings.dsn)
    ensure_schema(engine, provisioning_tables.metadata)
    handlers = ProvisioningHandlers(
        engine, Emitter(producer_from(settings, service="provisioning"), "provisioning"), SimulatedProvider(engine)
    )
    return consumer_for(
        settings, group_id=group_id, scope=scope, handlers={"order.cancelled": handlers.on_order_cancelled}
    )


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

    def _builders(self) -> dict[str, Callable[[], EventConsumer]]:
        scope, s, tag = TenantScope(self.tenant_prefix), self.settings, self.tag
        return {
            "bridge": lambda: build_bridge_consumer(s, group_id=f"order-bridge-{tag}", scope=scope),
            "provisioning": lambda: build_provisioning_consumer(
                s, group_id=f"provisioning-{tag}", scope=scope
            ),
            "billing": lambda: build_billing_consumer(s, group_id=f"billing-{tag}", scope=scope),
            "notification": lambda: build_notification_consumer(
                s, group_id=f"notification-{tag}", scope=scope
            ),
            "provisioning-cancels": lambda: _cancels_only_provisioning(s, f"provisioning-{tag}", scope),
        }

    async def __aenter__(self) -> SagaHarness:
        configure_tracing("tests")
        builders = self._builders()
        consumers = await asyncio.gather(*(asyncio.to_thread(builders[k]) for k in self.consumer_kinds))
        for kind, consumer in zip(self.consumer_kinds, consumers, strict=True):
            timeout = 0.5 if kind == "notification" else SAGA_POLL_TIMEOUT_S
            thread = threading.Thread(
                target=consumer.run,
                args=(self._stop,),
                kwargs={"poll_timeout": timeout},
                name=f"{kind}-{self.tag}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        if "notification" in self.consumer_kinds:  # its reports wait in its outbox until relayed
            relay = await asyncio.to_thread(build_outbox_relay, self.settings, "notification")
            thread = threading.Thread(target=relay.run, args=(self._stop,), name=f"relay-{self.tag}", daemon=True)
            thread.start()
            self._threads.append(thread)
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
        assert self.client is not None
        order = new_order(self.tenant(tenant), plan_id, timings=timings or fast_timings())
        return await place_order(
            self.client, self.engine, order, fail_at=fail_at, pay=pay, task_queue=self.task_queue
        )
