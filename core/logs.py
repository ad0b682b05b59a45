"""Structured JSON logs: one object per line carrying traceId, spanId, correlationId, eventId, tenantId.

The messaging runtime binds the ids of the event in hand with `log_context(...)` (a context variable,
so threads and asyncio tasks keep their own); every line logged inside, by any logger, carries them.
Fields passed with `extra=` win over the bound ones.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time

from core.tracing import current_trace_ids

__all__ = ["JsonFormatter", "bind_event_ids", "bind_ids", "bound_log_fields", "configure_logging",
           "log_context", "unbind_ids"]

_FIELDS = ("correlationId", "eventId", "tenantId")
_ALIASES = {"correlation_id": "correlationId", "event_id": "eventId", "tenant_id": "tenantId",
            "event_type": "eventType"}
# Set by client libraries' log adapters (`messaging.client_logs`, `core.temporal`) and `core.log_limit`.
_RECORD_FIELDS = ("client", "facility", "repeated")
_bound: contextvars.ContextVar[dict[str, object]] = contextvars.ContextVar("cf_log_fields", default={})  # noqa: B039 - never mutated


class log_context:  # noqa: N801 - used like a function: `with log_context(...):`
    """Bind ids (snake_case or camelCase names) to every log line emitted inside the block.

    A small class rather than a generator context manager: the consumer enters one per record.
    """

    __slots__ = ("_fields", "_token")

    def __init__(self, **fields: object) -> None:
        self._fields = fields
        self._token: contextvars.Token[dict[str, object]] | None = None

    def __enter__(self) -> None:
        merged = dict(_bound.get())
        for name, value in self._fields.items():
            if value is not None:
                merged[_ALIASES.get(name, name)] = value if type(value) is str else str(value)
        self._token = _bound.set(merged)

    def __exit__(self, *exc: object) -> None:
        _bound.reset(self._token)  # type: ignore[arg-type]


def bind_ids(correlation_id: object, event_id: object, tenant_id: str | None) -> contextvars.Token:
    """Bind the ids of one event to every log line until `unbind_ids(token)`. The ids may be strings or
    UUIDs (or None: left as bound); a UUID is turned into text only when a line is actually written,
    so a record that logs nothing never pays for it. The consumer binds one set per record."""
    current = _bound.get()
    if not current and correlation_id is not None and event_id is not None and tenant_id is not None:
        return _bound.set({"correlationId": correlation_id, "eventId": event_id, "tenantId": tenant_id})
    merged = dict(current)
    for name, value in zip(_FIELDS, (correlation_id, event_id, tenant_id)):  # noqa: B905 - both have three
        if value is not None:
            merged[name] = value
    return _bound.set(merged)


def unbind_ids(token: contextvars.Token) -> None:
    _bound.reset(token)


class bind_event_ids:  # noqa: N801 - used like a function
    """`bind_ids` for the length of a block: `log_context(correlation_id=..., event_id=...,
    tenant_id=...)` without the name mapping."""

    __slots__ = ("_ids", "_token")

    def __init__(self, correlation_id: object, event_id: object, tenant_id: str | None) -> None:
        self._ids = (correlation_id, event_id, tenant_id)
        self._token: contextvars.Token[dict[str, object]] | None = None

    def __enter__(self) -> None:
        self._token = bind_ids(*self._ids)

    def __exit__(self, *exc: object) -> None:
        _bound.reset(self._token)  # type: ignore[arg-type]


def bound_log_fields() -> dict[str, str]:
    """The ids currently bound by `log_context` (for tests and for handing to other threads)."""
    return {name: value if type(value) is str else str(value) for name, value in _bound.get().items()}


class JsonFormatter(logging.Formatter):
    """Every line has the same keys, null when unknown, so log queries never miss a field."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        trace_id, span_id = current_trace_ids()
        line: dict[str, object] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "traceId": trace_id,
            "spanId": span_id,
            "pid": record.process,  # which process, where several write one stream (`--processes N`)
        }
        bound = _bound.get()
        for name in _FIELDS:
            value = bound.get(name)
            line[name] = value if value is None or type(value) is str else str(value)
        for name, value in bound.items():
            line.setdefault(name, value)
        for name, alias in _ALIASES.items():
            if hasattr(record, name):
                line[alias] = str(getattr(record, name))
        for name in _RECORD_FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: str | None = None) -> None:
    """Root logger → JSON on stderr; `CF_LOG_LEVEL` sets the level (default INFO)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("CF_LOG_LEVEL", "INFO")).upper())
