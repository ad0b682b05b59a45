"""What the CLI-driven services' commands (Identity, Product, Support) share: each command changes one
entity's rows and queues the matching event in the service's outbox, in one transaction (the outbox
relay publishes it after the commit). Commands touch only PostgreSQL: Kafka is the relay's business.

An entity's events form its flow: correlationId derived from the entity id, causation = the entity's
previous event (kept on its row as `last_event_id`), event ids from (entity, step) — so a command
retried after a crash re-queues the same event.

Each command (a public method of a commands class) runs in a span of its own — `identity.register`,
`support.open`, … — a child of the caller's span or the root of a new trace, so the events it queues
always carry a trace context that the relay and the consumers continue.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Column, Connection, Engine, MetaData, Table, select, update
from sqlalchemy.exc import IntegrityError

import schemas
from core.db import engine_for, ensure_schema
from core.settings import Settings
from core.tracing import scope
from messaging.wiring import keyring_from
from services.common.outbox_emitter import OutboxEmitter

__all__ = ["EntityCommands", "build_commands", "flow_id"]

_NS = uuid.UUID("9a7c1e44-2f6b-4d0a-b3c8-5e1f0a2d4c66")

C = TypeVar("C", bound="EntityCommands")
P = ParamSpec("P")
R = TypeVar("R")


def flow_id(kind: str, entity_id: uuid.UUID | str) -> uuid.UUID:
    """The correlationId of the flow of entity `entity_id` of `kind` (user, product, ticket)."""
    return uuid.uuid5(_NS, f"{kind}/{entity_id}")


def _in_span(method: Callable[Concatenate[C, P], R]) -> Callable[Concatenate[C, P], R]:
    """Run a command in its span `<service>.<name>` (`create_api_key` → `identity.create-api-key`):
    under the caller's span, else as a new trace, so a command started with no span active (the CLI)
    still hands its events a trace context to continue."""
    name = method.__name__.replace("_", "-")

    @functools.wraps(method)
    def traced(self: C, *args: P.args, **kwargs: P.kwargs) -> R:
        service = self.emit.service
        attributes = {"cloudfactory.service": service, "cloudfactory.command": name}
        with scope(f"{service}.{name}", attributes=attributes, tracer_name="cloud_factory.commands"):
            return method(self, *args, **kwargs)

    return traced


def _key(table: Table) -> Column:
    (column,) = table.primary_key.columns
    return column


class EntityCommands:
    """The base of a service's commands: `flow_kind` names its flows; a command runs in
    `_transaction`, reads its entity with `_row`, writes with `_insert`/`_update`, and announces the
    change with `_step`."""

    flow_kind: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every public method a commands class defines is a command: it runs in its own span."""
        super().__init_subclass__(**kwargs)
        for name, member in list(vars(cls).items()):
            if not name.startswith("_") and inspect.isfunction(member):
                setattr(cls, name, _in_span(member))

    def __init__(self, engine: Engine, emitter: OutboxEmitter) -> None:
        self.engine = engine
        self.emit = emitter

    @contextlib.contextmanager
    def _transaction(self, *, duplicate: str | None = None) -> Iterator[Connection]:
        """One command's transaction: its rows and events commit together or not at all. With
        `duplicate`, a unique-key violation (the entity exists already) is refused as
        `ValueError(duplicate)`."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except IntegrityError:
            if duplicate is None:
                raise
            raise ValueError(duplicate) from None

    @staticmethod
    def _row(conn: Connection, table: Table, key: Any, *, missing: str, lock: bool = False) -> dict:
        """The row of `table` whose primary key is `key` (locked for the transaction with `lock`), else
        `LookupError(missing)`."""
        query = select(table).where(_key(table) == key)
        row = conn.execute(query.with_for_update() if lock else query).mappings().first()
        if row is None:
            raise LookupError(missing)
        return dict(row)

    @staticmethod
    def _insert(conn: Connection, table: Table, **values: Any) -> None:
        conn.execute(table.insert().values(**values))

    @staticmethod
    def _update(conn: Connection, table: Table, key: Any, **values: Any) -> None:
        conn.execute(update(table).where(_key(table) == key).values(**values))

    def _step(
        self,
        conn: Connection,
        table: Table,
        entity_id: Any,
        *,
        step: str,
        event_type: str,
        data: Mapping[str, Any],
        tenant_id: str,
        actor: schemas.Actor,
        previous: str | None,
        flow_of: Any = None,
    ) -> schemas.Envelope:
        """Queue the step's event in the outbox and record it as the entity's last event, both inside
        `conn`'s transaction. `flow_of` names the flow's owner when the row is a child (an API key
        belongs to its user's flow, a plan to its product's)."""
        owner = entity_id if flow_of is None else flow_of
        envelope = self.emit.new(
            conn,
            event_type,
            data,
            tenant_id=tenant_id,
            correlation_id=flow_id(self.flow_kind, owner),
            actor=actor,
            key=f"{self.flow_kind}/{entity_id}/{step}",
            causation_id=uuid.UUID(previous) if previous else None,
        )
        self._update(conn, table, entity_id, last_event_id=str(envelope.event_id))
        return envelope


def build_commands(
    settings: Settings, service: str, metadata: MetaData, outbox: Table, factory: type[C]
) -> C:
    """A service's commands built from `Settings`: its schema ensured, an emitter into its outbox."""
    engine = engine_for(settings.dsn)
    ensure_schema(engine, metadata)
    return factory(engine, OutboxEmitter(service, outbox, keyring_from(settings), env=settings.env))
