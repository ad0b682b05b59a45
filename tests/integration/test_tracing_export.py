"""`CF_TRACE_EXPORTER=otlp` really exports: a process publishes and consumes one event, and an OTLP/HTTP
receiver in this test gets the `publish`, `consume` and `handle` spans of one trace, the consumer's
span parented on the producer's across Kafka (the `traceparent` header), the handler's on the
consumer's. The receiver decodes the protobuf request as a collector would."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

import schemas
from core.settings import Settings

pytestmark = pytest.mark.stack


class _Receiver(BaseHTTPRequestHandler):
    requests: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).requests.append((self.path, body))
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    _Receiver.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Receiver.requests
    server.shutdown()


def test_otlp_exporter_sends_one_trace_across_kafka(stack, settings: Settings, unique: str, receiver) -> None:
    endpoint, requests = receiver
    tenant = f"trace-{unique}"
    env = {**os.environ, "CF_TRACE_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
           "OTEL_BSP_SCHEDULE_DELAY": "200"}
    run = subprocess.run([sys.executable, "-m", "tests.support.traced_roundtrip", tenant], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr

    assert requests and {path for path, _ in requests} == {"/v1/traces"}
    spans, services = [], set()
    for _, body in requests:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            services |= {a.value.string_value for a in resource_spans.resource.attributes
                         if a.key == "service.name"}
            for scope_spans in resource_spans.scope_spans:
                spans += list(scope_spans.spans)
    assert services == {"traced-roundtrip"}

    topic = schemas.topic_for("order.created", env=settings.env)
    by_name = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    [publish] = by_name[f"publish {topic}"]
    [handle] = by_name["handle order.created"]
    consume = next(s for s in by_name[f"consume {topic}"] if s.span_id == handle.parent_span_id)
    assert publish.trace_id == consume.trace_id == handle.trace_id
    assert consume.parent_span_id == publish.span_id  # continued from the record's traceparent
    assert publish.kind == publish.SPAN_KIND_PRODUCER and consume.kind == consume.SPAN_KIND_CONSUMER
    attributes = {a.key: a.value for a in consume.attributes}
    assert attributes["messaging.destination.name"].string_value == topic
    assert {a.key: a.value.string_value for a in handle.attributes}["cloudfactory.handler"] == f"traced-{tenant}"


def test_console_exporter_prints_the_spans(stack, unique: str) -> None:
    env = {**os.environ, "CF_TRACE_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "200"}
    run = subprocess.run([sys.executable, "-m", "tests.support.traced_roundtrip", f"trace-{unique}"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert '"name": "handle order.created"' in run.stdout
    assert '"kind": "SpanKind.CONSUMER"' in run.stdout and '"kind": "SpanKind.PRODUCER"' in run.stdout
