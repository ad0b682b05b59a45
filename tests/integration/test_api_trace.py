"""One trace from an HTTP request to the saga's far ends: an order placed through the API with a
`traceparent` of the test's is fulfilled by the saga worker and the consumers (run with
`CF_TRACE_EXPORTER=otlp`), and every span the receiver gets for it — the API's server span, the
Temporal client's and workflow's spans, the publishing activities, the consumers' `consume` and
`handle` spans of Provisioning and Notification — belongs to the test's trace, linked by parent ids
back to the server span, which is parented on the test's span."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from core.settings import Settings
from tests.support.otlp_receiver import OtlpReceiver, otlp_receiver

pytestmark = pytest.mark.stack


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


def _chain(span: Span, by_id: dict[bytes, Span]) -> list[Span]:
    """`span` and its ancestors, as far as the receiver has them."""
    chain = [span]
    while chain[-1].parent_span_id and chain[-1].parent_span_id in by_id and len(chain) < 100:
        chain.append(by_id[chain[-1].parent_span_id])
    return chain


def _describe(chain: list[Span]) -> str:
    names = " <- ".join(f"{s.name} [{s.span_id.hex()}]" for s in chain)
    last = chain[-1]
    return f"{names} (then parent {last.parent_span_id.hex() or 'none'}, not received)"


def _attribute(span: Span, key: str) -> str | None:
    return next((a.value.string_value for a in span.attributes if a.key == key), None)


def _run(tag: str, traceparent: str, receiver: OtlpReceiver) -> list[Span]:
    env = {**os.environ, "CF_TRACE_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
           "OTEL_BSP_SCHEDULE_DELAY": "200"}
    run = subprocess.run([sys.executable, "-m", "tests.support.traced_api", tag, traceparent], env=env,
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr[-6000:]
    spans, services = receiver.spans()
    assert services == {"traced-api"}
    return spans


def test_one_trace_from_the_http_request_to_provisioning_and_notification(
        stack, settings: Settings, unique: str, receiver: OtlpReceiver) -> None:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    spans = _run(unique, f"00-{trace_id}-{parent_id}-01", receiver)
    by_id = {s.span_id: s for s in spans}
    servers = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER and s.name.startswith("POST /v1/orders")]
    # one server span per request (a second one, a sibling, would be a second instrumentation)
    assert len(servers) == 1, [(s.name, s.span_id.hex(), s.parent_span_id.hex()) for s in servers]
    [server] = servers
    assert server.trace_id.hex() == trace_id, f"the server span is in trace {server.trace_id.hex()}"
    assert server.parent_span_id.hex() == parent_id  # continued from the request's traceparent

    provisioning = [s for s in spans if s.name == "handle order.provisioning-started"]
    notification = [s for s in spans if s.name in ("handle order.created", "handle order.fulfilled")
                    and (_attribute(s, "cloudfactory.handler") or "").startswith("notification")]
    assert provisioning, sorted({s.name for s in spans})
    assert notification, sorted({(s.name, _attribute(s, "cloudfactory.handler")) for s in spans
                                 if s.name.startswith("handle ")})
    for handle in (provisioning[0], *notification):
        chain = _chain(handle, by_id)
        assert all(s.trace_id.hex() == trace_id for s in chain), _describe(chain)
        assert chain[-1].span_id == server.span_id, _describe(chain)
