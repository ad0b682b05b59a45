"""How a process runs each kind of consumer, in one list for `cloud-factory worker`, the in-process
workers (demo, benchmarks) and the test harness: its base group id, its builder, how briefly it polls,
whether it runs a replica per partition and which outbox relay runs beside it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from core.settings import Settings
from messaging.consumer import EventConsumer
from workers.consumers import build_bridge_consumer, build_consumer, subscriptions_of
from workers.kinds import CONSUMING_SERVICES, WorkerKind

__all__ = ["IDLE_POLL_TIMEOUT_S", "SAGA_POLL_TIMEOUT_S", "ConsumerRecipe", "consumer_recipes"]

# The runtime fetches in batches and waits up to the poll timeout for a batch to fill; on the saga's
# path every hop pays that wait, so these consumers poll briefly (cheap when idle, fast per hop).
SAGA_POLL_TIMEOUT_S = 0.05
IDLE_POLL_TIMEOUT_S = 0.5  # off the saga's path nobody waits on a hop: fewer, fuller polls


@dataclass(frozen=True)
class ConsumerRecipe:
    """One consumer kind, as every process that runs it runs it."""

    kind: WorkerKind
    group_id: str  # the base group id; isolated runs append their suffix
    build: Callable[..., EventConsumer]  # (settings, *, group_id, scope, **tuning)
    on_saga_path: bool  # a saga waits on its answers: poll briefly, one consumer per partition
    relay: str | None = None  # the service whose outbox relay runs beside this consumer

    @property
    def poll_timeout_s(self) -> float:
        return SAGA_POLL_TIMEOUT_S if self.on_saga_path else IDLE_POLL_TIMEOUT_S

    def replicas(self, per_partition: int) -> int:
        """Consumers to run: `per_partition` on the saga's path, else one."""
        return per_partition if self.on_saga_path else 1

    def consumer(self, settings: Settings, *, group_suffix: str = "", **options: object) -> EventConsumer:
        """A consumer of this kind in the base group plus `group_suffix` (an isolated run's)."""
        return self.build(settings, group_id=f"{self.group_id}{group_suffix}", **options)


def _bridge_recipe() -> ConsumerRecipe:
    from bridges.worker import ORDER_BRIDGE_GROUP

    return ConsumerRecipe(WorkerKind.BRIDGE, ORDER_BRIDGE_GROUP, build_bridge_consumer, on_saga_path=True)


@functools.cache
def consumer_recipes() -> Mapping[WorkerKind, ConsumerRecipe]:
    """Every consumer kind: Order's bridge, then each consuming service from its subscriptions."""
    recipes = {WorkerKind.BRIDGE: _bridge_recipe()}
    for service in CONSUMING_SERVICES:
        subscriptions = subscriptions_of(service)
        recipes[WorkerKind(service.value)] = ConsumerRecipe(
            WorkerKind(service.value),
            subscriptions.group_id,
            functools.partial(build_consumer, subscriptions=subscriptions),
            on_saga_path=subscriptions.on_saga_path,
            relay=service.value if subscriptions.outbox is not None else None,
        )
    return MappingProxyType(recipes)
