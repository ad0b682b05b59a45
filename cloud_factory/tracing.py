"""OpenTelemetry set-up and W3C trace-context propagation through Kafka headers.

Every process installs an SDK tracer provider so that spans have real ids (the `traceparent`
header is part of the event contract); exporting them is optional: `CF_TRACE_EXPORTER` is `none`
(default: ids only — spans are not sampled, so nothing is recorded or leaves the process and a span
costs little more than its ids), `console`, or `otlp` (needs opentelemetry-exporter-otlp installed).

Spans: the producer opens `publish {topic}` (PRODUCER), the consumer `consume {topic}` (CONSUMER)
parented on the record's `traceparent`, and each handler `handle {eventType}`; Temporal's
`TracingInterceptor` joins workflow and activity spans to the same traces.
"""

from __future__ import annotations

import os
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
    "tracing_configured",
    "current_trace_ids",
    "extract_context",
    "header_value",
    "inject_headers",
    "tracer",
]

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACE_HEADERS = ("traceparent", "tracestate")
_configured = False


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
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise RuntimeError("CF_TRACE_EXPORTER=otlp needs `pip install opentelemetry-exporter-otlp`") from exc
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif exporter != "none":
        raise ValueError(f"CF_TRACE_EXPORTER must be none, console or otlp, not {exporter!r}")
    trace.set_tracer_provider(provider)
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

