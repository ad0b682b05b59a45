"""An OTLP/HTTP trace receiver for tests: what a collector would get from a process run with
`CF_TRACE_EXPORTER=otlp` and `OTEL_EXPORTER_OTLP_ENDPOINT` pointed at it, decoded from protobuf as a
collector would decode it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = ["OtlpReceiver", "otlp_receiver"]


@dataclass
class OtlpReceiver:
    """The receiver's address and the (path, body) of every request it got."""

    endpoint: str
    requests: list[tuple[str, bytes]] = field(default_factory=list)

    def spans(self) -> tuple[list[Span], set[str]]:
        """Every span received, and the `service.name`s of the resources they came from."""
        spans: list[Span] = []
        services: set[str] = set()
        for _, body in list(self.requests):
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                services |= {a.value.string_value for a in resource_spans.resource.attributes
                             if a.key == "service.name"}
                for scope_spans in resource_spans.scope_spans:
                    spans += list(scope_spans.spans)
        return spans, services


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """Serve OTLP/HTTP on a free local port for the block; answers every export with success."""
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append((self.path, body))
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield OtlpReceiver(f"http://127.0.0.1:{server.server_address[1]}", received)
    finally:
        server.shutdown()
        server.server_close()
