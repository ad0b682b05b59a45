"""One event published and consumed in a process of its own with whatever `CF_TRACE_EXPORTER` and
`OTEL_EXPORTER_OTLP_*` its environment sets (tracing is configured once per process, so an exporter
test cannot share the test session's process). Exits 0 once the handler ran; spans are flushed by
the SDK at exit.

Usage: python -m tests.support.traced_roundtrip <tenant-id>
"""

from __future__ import annotations

import sys
import time
import uuid

import schemas
from core.settings import get_settings
from core.tracing import configure_tracing
from messaging.wiring import consumer_from, producer_from
from schemas.examples import example_data


def main(tenant_id: str) -> int:
    configure_tracing("traced-roundtrip")
    settings = get_settings()
    data = example_data("order.created", schemas.catalog["order.created"].latest_version)
    envelope = schemas.new_event("order.created", data, tenant_id=tenant_id, correlation_id=uuid.uuid4(),
                                 actor=schemas.Actor(id="test", type=schemas.ActorType.SYSTEM),
                                 producer="order-service")
    handled: list[str] = []

    def handler(event: schemas.Envelope, context: object) -> None:
        if event.event_id == envelope.event_id:
            handled.append(str(event.event_id))

    consumer = consumer_from(settings, group_id=f"traced-{tenant_id}", handlers={"order.created": handler},
                             idempotency=False, accept=lambda event: event.tenant_id == tenant_id)
    producer = producer_from(settings, service="order", fallback=False)
    producer.publish(envelope)
    deadline = time.monotonic() + 60
    while not handled and time.monotonic() < deadline:
        consumer.poll_once(0.5)
    consumer.close()
    producer.close()
    print(f"handled {handled}")
    return 0 if handled else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
