"""OpenTelemetry set-up and W3C trace-context propagation through Kafka headers.

Every process installs an SDK tracer provider so that spans have real ids (the `traceparent`
header is part of the event contract); exporting them is optional: `CF_TRACE_EXPORTER` is `none`
(default: ids only — spans are not sampled, so nothing is recorded or leaves the process and a span
costs little more than its ids), `console`, or `otlp` (OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT`,
default http://localhost:4318; the `otlp` extra installs the exporter).

Spans: the producer opens `publish {topic}` (PRODUCER), the consumer `consume {topic}` (CONSUMER)
parented on the record's `traceparent`, and each handler `handle {eventType}`; Temporal's
`TracingInterceptor` joins workflow and activity spans to the same traces. An outbox row keeps the
context of the span that wrote it (a command's `<service>.<command>` span, a handler's span), and
its relay publishes the record in a `publish {topic}` span under that context. With no exporter the
handler runs inside the `consume` span itself (one span's ids per record: nothing is recorded, so a
second span would cost time and show nowhere), and those ids are made when first read (`ids_span`).
"""

from __future__ import annotations

import binascii
import os
import random
from collections.abc import Iterable, Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "configure_tracing",
    "fast_extract",
    "attach_span",
    "attach_ids_span",
    "detach_span",
    "ids_span",
    "child_traceparent",
    "fast_inject",
    "parse_traceparent",
    "recording",
    "scope",
    "TRACE_HEADERS",
    "tracing_configured",
    "current_trace_ids",
    "extract_context",
    "header_value",
    "inject_headers",
    "tracer",
]

_PROPAGATOR = TraceContextTextMapPropagator()
#: The W3C trace-context headers a record carries (the generated AsyncAPI lists them from here).
TRACE_HEADERS = ("traceparent", "tracestate")
_TRACE_HEADERS = TRACE_HEADERS
_configured = False
_recording = False


def configure_tracing(service_name: str, exporter: str | None = None) -> None:
    """Install the process-wide tracer provider once; later calls are no-ops."""
    global _configured
    if _configured:
        return
    exporter = (exporter or os.environ.get("CF_TRACE_EXPORTER", "none")).lower()
    resource = Resource.create({"service.name": service_name})
    if exporter == "none":
        # Ids only: a sampled parent from another process is still honoured (recorded nowhere).
        provider = TracerProvider(resource=resource, sampler=ParentBased(ALWAYS_OFF))
    else:
        provider = TracerProvider(resource=resource)
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        try:  # OTLP over HTTP/protobuf: the protocol's default, and no gRPC runtime to install
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise RuntimeError("CF_TRACE_EXPORTER=otlp needs the otlp extra: "
                               "pip install 'cloud-factory[otlp]'") from exc
        # Endpoint, headers and timeout come from the standard OTEL_EXPORTER_OTLP_* variables.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter != "none":
        raise ValueError(f"CF_TRACE_EXPORTER must be none, console or otlp, not {exporter!r}")
    trace.set_tracer_provider(provider)
    global _recording
    _recording = exporter != "none"
    _configured = True


def tracing_configured() -> bool:
    return _configured


def tracer(name: str = "cloud_factory") -> trace.Tracer:
    return trace.get_tracer(name)


def inject_headers(ctx: otel_context.Context | None = None) -> list[tuple[str, bytes]]:
    """`traceparent`/`tracestate` Kafka headers for the current (or given) context."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=ctx)
    return [(name, carrier[name].encode()) for name in _TRACE_HEADERS if name in carrier]


def extract_context(headers: Iterable[tuple[str, bytes | str | None]] | None) -> otel_context.Context:
    """The producer's trace context from Kafka headers, to parent the consumer's spans on."""
    carrier: dict[str, str] = {}
    for name, value in headers or ():
        if name in _TRACE_HEADERS and value is not None:
            carrier[name] = value.decode() if isinstance(value, bytes) else value
    return _PROPAGATOR.extract(carrier)


def current_trace_ids() -> tuple[str | None, str | None]:
    """(trace id, span id) of the current span as hex, or (None, None) outside any span."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None, None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"


def header_value(headers: Sequence[tuple[str, bytes | None]] | None, name: str) -> bytes | None:
    """The last value of a Kafka header, or None."""
    found = None
    for key, value in headers or ():
        if key == name:
            found = value
    return found



# -- the hot path -----------------------------------------------------------------------------------
# With no exporter, nothing is recorded, so the messaging runtime does not pay for SDK spans per
# record: it continues the incoming trace with a non-recording span that has a fresh span id (so
# log lines and outgoing `traceparent` headers still name a distinct span) and builds the header
# itself. With an exporter, real spans are opened (`scope(..., recording() is True)`).

_random = random.Random()
_getrandbits = _random.getrandbits
_SpanContext = trace.SpanContext
_NonRecordingSpan = trace.NonRecordingSpan
_get_current_span = trace.get_current_span
_set_span_in_context = trace.set_span_in_context
_attach = otel_context.attach
_detach = otel_context.detach
_FLAGS = (trace.TraceFlags(0), trace.TraceFlags(1))
_unhexlify = binascii.unhexlify
_from_bytes = int.from_bytes
_get_current = otel_context.get_current
_Context = otel_context.Context


def _span_key() -> str | None:
    """The key under which a context holds its span, as `set_span_in_context` writes it and
    `get_current_span` reads it; None (the consumer then takes the two public steps) if this
    OpenTelemetry does not keep the span under one key of a plain `Context`."""
    probe = trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)
    made = trace.set_span_in_context(probe, otel_context.Context())
    keys = [key for key, value in made.items() if value is probe]
    if type(made) is not otel_context.Context or len(made) != 1 or len(keys) != 1:
        return None
    return keys[0] if trace.get_current_span(otel_context.Context({keys[0]: probe})) is probe else None


_SPAN_KEY = _span_key()


def recording() -> bool:
    """Are spans exported (console/otlp)? False means ids only."""
    return _recording


def fast_extract(headers: Iterable[tuple[str, bytes | str | None]] | None) -> trace.SpanContext | None:
    """The remote span context of a `traceparent` header (version 00), or None when absent/invalid."""
    for name, value in headers or ():
        if name == "traceparent":
            return parse_traceparent(value)
    return None


def _traceparent_fields(value: object) -> tuple[int, int, int] | None:
    """(trace id, span id, flags) of one version-00 `traceparent` value, None when empty/invalid.
    Parsed from the bytes themselves: the consumer has the header value as bytes, per record. Each
    field must be lowercase hex digits, as W3C trace context and OpenTelemetry's own propagator
    require (`unhexlify` also refuses a sign, spaces and `_`, which `int` would take)."""
    if not value:
        return None
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, str):
        raw = value.encode("ascii", "replace")
    elif isinstance(value, bytearray | memoryview):
        raw = bytes(value)
    else:
        return None
    if len(raw) == 55 and raw[:3] == b"00-" and raw[35] == 45 and raw[52] == 45 and raw == raw.lower():
        try:
            trace_id = _from_bytes(_unhexlify(raw[3:35]))
            span_id = _from_bytes(_unhexlify(raw[36:52]))
            flags = _unhexlify(raw[53:])[0]
        except binascii.Error:
            return None
        if trace_id and span_id:  # all zeros is invalid
            return trace_id, span_id, flags
    return None


def parse_traceparent(value: bytes | str | None, tracestate: str | None = None) -> trace.SpanContext | None:
    """The remote span context of one `traceparent` value (version 00), or None when empty/invalid;
    `tracestate`, when given, is the vendors' entries that travel with it."""
    fields = _traceparent_fields(value)
    if fields is None:
        return None
    trace_id, span_id, flags = fields
    state = trace.TraceState.from_header([tracestate]) if tracestate else None
    return _SpanContext(trace_id, span_id, True, _FLAGS[flags & 1], state)


def fast_inject() -> list[tuple[str, bytes]]:
    """`traceparent` of the current span, built directly (no propagator round trip)."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return []
    header = f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{span_context.trace_flags:02x}"
    headers = [("traceparent", header.encode())]
    if span_context.trace_state:
        headers.append(("tracestate", span_context.trace_state.to_header().encode()))
    return headers


def child_traceparent(parent: trace.SpanContext | None = None) -> list[tuple[str, bytes]]:
    """Ids-only `publish` span: a `traceparent` naming a fresh span id under `parent` — by default the
    current span — (or a new trace), without making that span current. With nothing recorded only
    the header needs its id, and skipping the context switch is most of a publish span's cost per
    record."""
    base = parent if parent is not None else _get_current_span().get_span_context()
    if base.is_valid:
        trace_id, flags, state = base.trace_id, base.trace_flags, base.trace_state
    else:
        trace_id, flags, state = _getrandbits(128) or 1, 0, None
    header = f"00-{trace_id:032x}-{_getrandbits(64) or 1:016x}-{flags:02x}"
    headers = [("traceparent", header.encode())]
    if state:
        headers.append(("tracestate", state.to_header().encode()))
    return headers


class scope:  # noqa: N801 - used like a function: `with scope(...):`
    """A span for `name`: a real SDK span when recording, else a cheap non-recording child (or root)."""

    __slots__ = ("_cm", "_token", "span")

    def __init__(self, name: str, *, parent: trace.SpanContext | None = None, new_root_if_none: bool = True,
                 kind: trace.SpanKind = trace.SpanKind.INTERNAL, attributes: dict[str, object] | None = None,
                 tracer_name: str = "cloud_factory") -> None:
        self._cm = None
        self._token = None
        if _recording:
            context = (trace.set_span_in_context(trace.NonRecordingSpan(parent))
                       if parent is not None else None)
            self._cm = tracer(tracer_name).start_as_current_span(name, context=context, kind=kind,
                                                               attributes=attributes)  # type: ignore[arg-type]
            self.span = None
            return
        base = parent or _get_current_span().get_span_context()
        if base.is_valid:
            span_context = _SpanContext(base.trace_id, _getrandbits(64), False, base.trace_flags,
                                        base.trace_state)
        elif new_root_if_none:
            span_context = _SpanContext(_getrandbits(128), _getrandbits(64), False)
        else:
            span_context = trace.INVALID_SPAN_CONTEXT
        self.span = _NonRecordingSpan(span_context)

    def __enter__(self) -> trace.Span:
        if self._cm is not None:
            self.span = self._cm.__enter__()
            return self.span
        self._token = _attach(_set_span_in_context(self.span))
        return self.span

    def __exit__(self, *exc: object) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)
        else:
            _detach(self._token)


def ids_span(traceparent: bytes | str | None) -> trace.NonRecordingSpan:
    """Ids only (nothing records): a non-recording span with a fresh span id in the trace a
    `traceparent` header value names — else in the current span's trace, else in a new one.

    What `scope(name, parent=parse_traceparent(value))` opens when nothing records, made for each
    record by the consumer (current around its handlers: `attach_ids_span`/`detach_span`). Its ids are
    made when first read: a handler that neither logs, publishes nor reads its context's ids never
    pays for parsing the header or drawing a span id."""
    return _RecordSpan(traceparent, _get_current())


class _RecordSpan(trace.NonRecordingSpan):
    """`ids_span`'s span: the record's `traceparent` and the context it was made in, turned into its
    span context on first `get_span_context()`. The first one made is kept with `dict.setdefault`
    (one step under the GIL), so every reader, also a thread the handler hands its context to,
    sees the same ids."""

    def __init__(self, traceparent: bytes | str | None, outer: otel_context.Context) -> None:
        self._traceparent, self._outer = traceparent, outer

    def get_span_context(self) -> trace.SpanContext:
        made = self.__dict__.get("_context")
        if made is None:
            made = self.__dict__.setdefault("_context", _consume_span_context(self._traceparent, self._outer))
        return made

    def __repr__(self) -> str:
        return f"NonRecordingSpan({self.get_span_context()!r})"


def _consume_span_context(traceparent: bytes | str | None, outer: otel_context.Context) -> trace.SpanContext:
    fields = _traceparent_fields(traceparent)
    if fields is not None:
        return _SpanContext(fields[0], _getrandbits(64) or 1, False, _FLAGS[fields[2] & 1])
    base = _get_current_span(outer).get_span_context()
    if base.is_valid:
        return _SpanContext(base.trace_id, _getrandbits(64) or 1, False, base.trace_flags, base.trace_state)
    return _SpanContext(_getrandbits(128) or 1, _getrandbits(64) or 1, False)


def attach_span(span: trace.Span) -> object:
    """Make `span` current; returns the token `detach_span` takes (no context-manager object)."""
    return _attach(_set_span_in_context(span))


def attach_ids_span(traceparent: bytes | str | None) -> tuple[trace.NonRecordingSpan, object]:
    """`ids_span(traceparent)` made current at once: the span and the token `detach_span` takes.

    The consumer's step per record when nothing records: the current context is read once for both
    (the span's fallback trace and the context it is added to), and the new context is built in one
    step rather than through `set_span_in_context`'s three calls (~0.2 us of ~0.8 a record)."""
    outer = _get_current()
    span = _RecordSpan(traceparent, outer)
    if _SPAN_KEY is None:  # not the OpenTelemetry `_span_key` knows: its own two steps
        return span, _attach(_set_span_in_context(span, outer))
    return span, _attach(_Context({**outer, _SPAN_KEY: span}))


def detach_span(token: object) -> None:
    _detach(token)  # type: ignore[arg-type]

