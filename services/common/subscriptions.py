"""What a consuming service declares next to its handlers: its consumer group and which method of its
handler object each event type goes to.

A service says *what* it consumes; the composition root (`workers.consumers.build_consumer`) builds
the *how* — the service's schema, its emitter, the Kafka consumer — so every consuming service is
wired alike and none of them builds Kafka clients or reads settings itself.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, MetaData, Table

import schemas
from messaging.handlers import HandlerContext, HandlerSpec

__all__ = ["Route", "Subscriptions"]

H = TypeVar("H")

Route = Callable[[H, schemas.Envelope, HandlerContext], Any]
"""A method of the service's handler object, taken unbound (`ProvisioningHandlers.on_order_cancelled`)."""


@dataclass(frozen=True)
class Subscriptions(Generic[H]):
    """One service's subscriptions. `handlers(engine, emitter)` builds the service's handler object;
    `routes` maps each event type to the method of that object that handles it. A service with an
    `outbox` emits into it (inside the handler's transaction when `transactional`), any other
    straight to Kafka. `on_saga_path`: a saga waits on this service's answers, so its worker polls
    briefly and runs a consumer per partition."""

    service: schemas.Service
    group_id: str
    schema: MetaData
    handlers: Callable[[Engine, Any], H]
    routes: Mapping[str, Route]
    outbox: Table | None = None
    transactional: bool = False
    on_saga_path: bool = False

    def __post_init__(self) -> None:
        if not self.routes:
            raise ValueError(f"{self.service} subscribes to nothing")

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(self.routes)

    def bind(self, handlers: H) -> dict[str, HandlerSpec]:
        """The consumer's `handlers` mapping: each route bound to `handlers` (the object built by
        `self.handlers`), named after the consumer (its group id) like a plain handler."""
        return {
            event_type: HandlerSpec(types.MethodType(route, handlers), transactional=self.transactional)
            for event_type, route in self.routes.items()
        }

    def only(self, *event_types: str) -> Subscriptions[H]:
        """The same service hearing only `event_types` (a test taking one of its paths down)."""
        unknown = set(event_types) - set(self.routes)
        if unknown:
            raise ValueError(f"{self.service} does not subscribe to {sorted(unknown)}")
        return dataclasses.replace(self, routes={t: self.routes[t] for t in event_types})

    def with_outbox(self, outbox: Table) -> Subscriptions[H]:
        """The same service emitting into another outbox table (a test's private one, relayed by no one
        else)."""
        if self.outbox is None:
            raise ValueError(f"{self.service} emits straight to Kafka; it has no outbox to replace")
        return dataclasses.replace(self, outbox=outbox)
