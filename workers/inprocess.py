"""Every worker kind inside the calling process (the demo, benchmarks): consumers (and Notification's
outbox relay) in threads and the saga worker on the caller's asyncio loop. Same builders as
`cloud-factory worker`, same isolation knobs (task queue, group ids, tenant scope)."""

from __future__ import annotations

import asyncio
import threading

from temporalio.client import Client
from temporalio.worker import Worker

from bridges.worker import ORDER_BRIDGE_GROUP
from core.settings import Settings
from core.temporal import connect_client
from services.common import ALL_TENANTS, TenantScope
from workers.consumers import (
    BILLING_GROUP,
    PROVISIONING_GROUP,
    SAGA_POLL_TIMEOUT_S,
    build_billing_consumer,
    build_bridge_consumer,
    build_provisioning_consumer,
)
from workers.notification import NOTIFICATION_GROUP, build_notification_consumer
from workers.outbox import build_outbox_relay
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

    async def __aenter__(self) -> InProcessWorkers:
        s, sfx, scope = self.settings, self.group_suffix, self.scope
        builders = [
            ("bridge", lambda: build_bridge_consumer(s, group_id=f"{ORDER_BRIDGE_GROUP}{sfx}", scope=scope)),
            (
                "provisioning",
                lambda: build_provisioning_consumer(s, group_id=f"{PROVISIONING_GROUP}{sfx}", scope=scope),
            ),
            ("billing", lambda: build_billing_consumer(s, group_id=f"{BILLING_GROUP}{sfx}", scope=scope)),
        ] * (self.replicas if self.with_consumers else 0)
        if self.notification and self.with_consumers:
            builders.append(
                (
                    "notification",
                    lambda: build_notification_consumer(
                        s, group_id=f"{NOTIFICATION_GROUP}{sfx}", scope=scope
                    ),
                )
            )
        consumers = await asyncio.gather(*(asyncio.to_thread(build) for _, build in builders))
        for (name, _), consumer in zip(builders, consumers, strict=True):
            timeout = 0.5 if name == "notification" else SAGA_POLL_TIMEOUT_S
            thread = threading.Thread(
                target=consumer.run,
                args=(self._stop,),
                kwargs={"poll_timeout": timeout},
                name=name,
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        if self.notification and self.with_consumers:  # its reports wait in its outbox until relayed
            relay = await asyncio.to_thread(build_outbox_relay, s, "notification")
            thread = threading.Thread(
                target=relay.run, args=(self._stop,), name="notification-relay", daemon=True
            )
            thread.start()
            self._threads.append(thread)
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
