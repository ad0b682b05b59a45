"""What a consumer dispatches to: handlers, their names, and the context each call receives.

`handlers={event_type: handler}` is the simple form (named after the consumer's default handler
name, the consumer group). A `HandlerSpec` names a handler and may mark it transactional: it then
gets `context.db`, a connection inside the transaction that also records its idempotency key, so its
writes and the key commit together. Several handlers per event type are registered as a list; each
has its own idempotency key, so on a retry those that already succeeded are skipped.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from sqlalchemy import Connection

import schemas

__all__ = ["Handler", "HandlerContext", "HandlerEntry", "HandlerSpec", "specs_of"]


@dataclass(frozen=True)
class HandlerContext:
    """Where a message came from and how it was checked; handed to every handler."""

    topic: str
    partition: int
    offset: int
    headers: list[tuple[str, bytes]]
    signature: schemas.SignatureCheck
    trace_id: str | None = None
    span_id: str | None = None
    handler: str = ""
    attempt: int = 1  # 1 on first delivery, n on the (n-1)th in-place retry
    idempotency_key: str | None = None  # None when the consumer runs without an idempotency store
    db: Connection | None = None  # set for transactional handlers only

    @classmethod
    def of_span(cls, topic: str, partition: int, offset: int, headers: list[tuple[str, bytes]],
                signature: schemas.SignatureCheck, span: trace.Span, handler: str, attempt: int,
                idempotency_key: str | None, db: Connection | None) -> HandlerContext:
        """The context the consumer builds per handled record: equal to the constructor's frozen
        object with the ids of `span` (the handler's) as hex `trace_id`/`span_id`, but built without a
        frozen `__setattr__` per field, and the ids read only if a handler asks (most never do)."""
        context = object.__new__(_SpanIdsContext)
        context.__dict__.update(topic=topic, partition=partition, offset=offset, headers=headers,
                                signature=signature, handler=handler, attempt=attempt,
                                idempotency_key=idempotency_key, db=db, _span=span)
        return context


class _SpanIdsContext(HandlerContext):
    """A `HandlerContext` whose `trace_id`/`span_id` are read from its span on first access.

    `cached_property` is a non-data descriptor: a value the dataclass `__init__` stores (as
    `dataclasses.replace` does) takes precedence, so the object behaves as a plain `HandlerContext`."""

    __qualname__ = "HandlerContext"  # its repr is the dataclass's

    @functools.cached_property
    def trace_id(self) -> str | None:  # type: ignore[override]
        ids = self._ids()
        return f"{ids.trace_id:032x}" if ids.is_valid else None

    @functools.cached_property
    def span_id(self) -> str | None:  # type: ignore[override]
        ids = self._ids()
        return f"{ids.span_id:016x}" if ids.is_valid else None

    def _ids(self) -> trace.SpanContext:
        span = self.__dict__.get("_span")
        return span.get_span_context() if span is not None else trace.INVALID_SPAN_CONTEXT

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HandlerContext):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _FIELD_NAMES)

    __hash__ = HandlerContext.__hash__

    def __reduce__(self) -> tuple[type[HandlerContext], tuple[object, ...]]:
        """Pickled and copied as the plain `HandlerContext` it equals (its ids read then)."""
        return HandlerContext, tuple(getattr(self, name) for name in _FIELD_NAMES)


_FIELD_NAMES = tuple(field.name for field in dataclasses.fields(HandlerContext))


Handler = Callable[[schemas.Envelope, HandlerContext], Any]
"""Returns None or a JSON-serialisable result (cached with the idempotency key)."""


@dataclass(frozen=True)
class HandlerSpec:
    handler: Handler
    name: str | None = None  # default: the consumer's handler name (its group id)
    transactional: bool = False


HandlerEntry = Handler | HandlerSpec | Sequence[Handler | HandlerSpec]


def specs_of(entry: HandlerEntry | None, default_name: str) -> list[HandlerSpec]:
    """Normalise one `handlers[...]` value into named specs (read at dispatch time, so callers may
    swap handlers in the mapping while the consumer runs)."""
    if entry is None:
        return []
    items = entry if isinstance(entry, list | tuple) else [entry]
    specs = []
    for item in items:
        spec = item if isinstance(item, HandlerSpec) else HandlerSpec(item)
        if spec.name is None:
            spec = HandlerSpec(spec.handler, default_name, spec.transactional)
        specs.append(spec)
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"handlers of one event type need distinct names, got {names}")
    return specs
