"""`CF_TRACE_EXPORTER=otlp` really exports: a process publishes and consumes one event, and an OTLP/HTTP
receiver in this test gets the `publish`, `consume` and `handle` spans of one trace, the consumer's
span parented on the producer's across Kafka (the `traceparent` header), the handler's on the
consumer's. The receiver decodes the protobuf request as a collector would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

import schemas
from core.settings import Settings
from tests.support.otlp_receiver import OtlpReceiver, otlp_receiver

pytestmark = pytest.mark.stack


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


def test_otlp_exporter_sends_one_trace_across_kafka(stack, settings: Settings, unique: str,
                                                    receiver: OtlpReceiver) -> None:
    tenant = f"trace-{unique}"
    env = {**os.environ, "CF_TRACE_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
           "OTEL_BSP_SCHEDULE_DELAY": "200"}
    run = subprocess.run([sys.executable, "-m", "tests.support.traced_roundtrip", tenant], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr

    assert receiver.requests and {path for path, _ in receiver.requests} == {"/v1/traces"}
    spans, services = receiver.spans()
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
    assert ({a.key: a.value.string_value for a in handle.attributes}["cloudfactory.handler"]
            == f"traced-{tenant}")


def test_console_exporter_prints_the_spans(stack, unique: str) -> None:
    env = {**os.environ, "CF_TRACE_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "200"}
    run = subprocess.run([sys.executable, "-m", "tests.support.traced_roundtrip", f"trace-{unique}"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert '"name": "handle order.created"' in run.stdout
    assert '"kind": "SpanKind.CONSUMER"' in run.stdout and '"kind": "SpanKind.PRODUCER"' in run.stdout
