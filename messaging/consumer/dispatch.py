"""Dispatch: which handlers serve an event type, and calling each one with its context, inside a
consume span, its idempotency key honoured.

A duplicate key (the handler already succeeded) skips the handler; a key another consumer holds
raises `LeaseHeldError`; a transactional handler claims its key, runs and stores its result in one
transaction. Whatever a handler raises leaves here as `HandlerFailed`, naming the handler.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace

import schemas
from core.logs import bind_event_ids, bind_ids, unbind_ids
from core.tracing import attach_ids_span, detach_span, parse_traceparent, recording, scope
from messaging.consumer.claims import BatchClaims
from messaging.consumer.inflight import InFlight
from messaging.errors import LeaseHeldError, ResourceBusyError
from messaging.handlers import HandlerContext, HandlerEntry, HandlerSpec, specs_of
from messaging.idempotency import ClaimState, IdempotencyStore, KeyRequest
from messaging.metrics import METRICS

__all__ = ["Dispatcher", "HandlerFailed", "HandlerTable"]

log = logging.getLogger(__name__)

_TRACER = "cloud_factory.consumer"
_CONSUMER = trace.SpanKind.CONSUMER
_of_span = HandlerContext.of_span


class HandlerFailed(Exception):
    """A record could not be handled: `cause` is what was raised, `handler` who raised it (None when
    the record itself was refused before any handler ran)."""

    def __init__(self, cause: BaseException, handler: str | None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.handler = handler


class HandlerTable:
    """`handlers[event_type]` as named specs. The mapping is read at dispatch time, so callers may swap
    a handler while the consumer runs; the specs of an (immutable) entry are computed once."""

    def __init__(self, handlers: Mapping[str, HandlerEntry], default_name: str) -> None:
        self.handlers: dict[str, HandlerEntry] = dict(handlers)
        self.default_name = default_name
        self._specs: dict[str, tuple[HandlerEntry, list[HandlerSpec]]] = {}

    def specs_for(self, event_type: str) -> list[HandlerSpec]:
        entry = self.handlers.get(event_type)
        cached = self._specs.get(event_type)
        if cached is not None and cached[0] is entry:
            return cached[1]
        specs = specs_of(entry, self.default_name)
        if not isinstance(entry, list):  # a list may be changed in place: read it every time
            self._specs[event_type] = (entry, specs)
        return specs


class Dispatcher:
    """Calls the handlers of one record; `store` (None: no idempotency) records transactional keys."""

    def __init__(self, store: IdempotencyStore | None, default_name: str) -> None:
        self.store = store
        self.default_name = default_name

    def handle(self, item: InFlight, batch: BatchClaims, attempt: int) -> None:
        """Run every handler of `item`; raises `HandlerFailed` at the first that fails."""
        envelope = item.envelope
        if recording():
            attributes = {"messaging.system": "kafka", "messaging.destination.name": item.topic,
                          "messaging.kafka.partition": item.partition, "messaging.kafka.offset": item.offset}
            with scope(f"consume {item.topic}", parent=parse_traceparent(item.trace_parent), kind=_CONSUMER,
                       attributes=attributes, tracer_name=_TRACER) as consume_span, \
                    bind_event_ids(envelope.correlation_id if envelope else None,
                                   envelope.event_id if envelope else None,
                                   envelope.tenant_id if envelope else None):
                self._dispatch(item, envelope, batch, attempt, consume_span)
            return
        if item.error is not None or envelope is None:  # nothing records: no span needed to say so
            raise HandlerFailed(item.error or ValueError("undecodable record"), None)
        # Ids only, the consumer's path per record: no context-manager objects, one span made current.
        consume_span, span_token = attach_ids_span(item.trace_parent)
        try:
            ids_token = bind_ids(envelope.correlation_id, envelope.event_id, envelope.tenant_id)
            try:
                if item.requests:
                    self._dispatch(item, envelope, batch, attempt, consume_span)
                else:  # no idempotency keys: each handler in the consume span itself, called here
                    # (`_dispatch`'s loop without keys does the same when spans record)
                    check = item.check
                    assert check is not None  # read before the envelope
                    for spec in item.specs:
                        try:
                            context = _of_span(item.topic, item.partition, item.offset, item.headers,
                                               check, consume_span, spec.name or "", attempt, None, None)
                            spec.handler(envelope, context)
                        except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes
                            raise HandlerFailed(exc, spec.name or self.default_name) from exc
            finally:
                unbind_ids(ids_token)
        finally:
            detach_span(span_token)

    def _dispatch(self, item: InFlight, envelope: schemas.Envelope | None, batch: BatchClaims, attempt: int,
                  consume_span: trace.Span) -> None:
        if item.error is not None or envelope is None:
            raise HandlerFailed(item.error or ValueError("undecodable record"), None)
        if not item.requests:  # no idempotency keys (spans record; else `handle` calls them itself)
            for spec in item.specs:
                try:
                    self._call(spec, envelope, item, attempt, None, None, consume_span)
                except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes
                    raise HandlerFailed(exc, spec.name or self.default_name) from exc
            return
        claims, succeeded, failed = batch.claims, batch.succeeded, batch.failed
        for spec, request in zip(item.specs, item.requests, strict=True):
            name = spec.name or self.default_name
            key = request.key
            try:
                if spec.transactional and self.store is not None:
                    self._run_transactional(spec, request, envelope, item, attempt, consume_span)
                    continue
                if key in succeeded:  # a second copy of the record in this batch
                    log.info("duplicate %s for handler %s in one batch: skipped", envelope.event_id, name)
                    METRICS.add("duplicates")
                    continue
                claim = claims.get(key)
                if claim is not None and claim.state is ClaimState.DUPLICATE:
                    log.info("duplicate %s for handler %s: skipped (cached result kept)",
                             envelope.event_id, name)
                    continue
                if claim is not None and claim.state is ClaimState.BUSY:
                    raise LeaseHeldError(f"handler {name}: another consumer holds the lease")
                succeeded[key] = self._call(spec, envelope, item, attempt, key, None, consume_span)
            except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes
                if not isinstance(exc, ResourceBusyError):
                    failed[key] = f"{type(exc).__name__}: {exc}"[:1000]
                raise HandlerFailed(exc, name) from exc

    def _run_transactional(self, spec: HandlerSpec, request: KeyRequest, envelope: schemas.Envelope,
                           item: InFlight, attempt: int, consume_span: trace.Span) -> None:
        store = self.store
        assert store is not None
        with store.engine.begin() as conn:
            claim = store.claim([request], final=True, conn=conn)[request.key]
            if claim.state is ClaimState.DUPLICATE:
                log.info("duplicate %s for handler %s: skipped", envelope.event_id, spec.name)
                return
            if claim.state is ClaimState.BUSY:
                raise LeaseHeldError(f"handler {spec.name}: another consumer holds the lease")
            result = self._call(spec, envelope, item, attempt, request.key, conn, consume_span)
            if result is not None:
                store.complete({request.key: result}, conn=conn)

    def _call(self, spec: HandlerSpec, envelope: schemas.Envelope, item: InFlight, attempt: int,
              key: str | None, conn: Any, consume_span: trace.Span) -> Any:
        assert item.check is not None
        if not recording():
            # Ids only: nothing is exported, so the handler runs in the consume span itself instead of
            # a child nobody will ever see (its ids are what the logs and outgoing events carry).
            return spec.handler(envelope, _context(consume_span, spec, item, attempt, key, conn))
        attributes = {"cloudfactory.handler": spec.name or "",
                      "cloudfactory.event_id": str(envelope.event_id)}
        with scope(f"handle {envelope.event_type}", attributes=attributes, tracer_name=_TRACER) as span:
            # The context keeps only the span's ids, not the SDK span with its attributes and events.
            ids = trace.NonRecordingSpan(span.get_span_context())
            return spec.handler(envelope, _context(ids, spec, item, attempt, key, conn))


def _context(span: trace.Span, spec: HandlerSpec, item: InFlight, attempt: int, key: str | None,
             conn: Any) -> HandlerContext:
    assert item.check is not None
    return HandlerContext.of_span(item.topic, item.partition, item.offset, item.headers, item.check,
                                  span, spec.name or "", attempt, key, conn)
