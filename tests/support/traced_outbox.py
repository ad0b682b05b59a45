"""Identity, Product and Support commands through their outboxes to a consumer, in a process of its
own with whatever `CF_TRACE_EXPORTER` its environment sets (tracing is configured once per process).

One command of each service runs inside a span named `known`, one more Identity command with no span
active; each command's events are relayed (the CLI's own delivery) and a consumer handles them.
Prints one JSON line: the known span's ids, the events written (the span-less command's last), and
the trace id each handler saw.
Exits 0 once every event was handled. Spans are flushed by the SDK at exit.

Usage: python -m tests.support.traced_outbox <unique>
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from typing import TypeVar

import schemas
from core.settings import get_settings
from core.tracing import configure_tracing, current_trace_ids, tracer
from messaging import HandlerContext
from messaging.outbox.delivery import deliver
from messaging.wiring import consumer_from, ensure_catalog_topics
from services.common.commands import EntityCommands, build_commands, flow_id
from services.common.emitter import service_event_id
from services.common.outbox_services import service_tables
from services.identity.commands import IdentityCommands
from services.product.commands import ProductCommands
from services.support.commands import SupportCommands

EVENT_TYPES = ("identity.user-registered", "product.created", "support.ticket-created")


C = TypeVar("C", bound=EntityCommands)


def _commands(service: str, factory: type[C]) -> C:
    tables = service_tables(service)
    return build_commands(get_settings(), service, tables.metadata, tables.outbox, factory)


def main(unique: str) -> int:
    configure_tracing("traced-outbox")
    settings = get_settings()
    ensure_catalog_topics(settings, list(EVENT_TYPES))
    identity = _commands("identity", IdentityCommands)
    product = _commands("product", ProductCommands)
    support = _commands("support", SupportCommands)
    tenant = f"to-{unique}"

    events: list[dict[str, str]] = []

    def written(command: str, event_type: str, kind: str, entity: uuid.UUID, step: str) -> None:
        service = command.split(".")[0]
        events.append({"service": service, "command": command, "event_type": event_type,
                       "flow": str(flow_id(kind, entity)),
                       "event_id": str(service_event_id(service, f"{kind}/{entity}/{step}"))})

    with tracer("tests").start_as_current_span("known"):
        known_trace, known_span = current_trace_ids()
        user = identity.register(tenant, f"known-{unique}@example.com", "Ada")
        written("identity.register", "identity.user-registered", "user", user, "registered")
        made = product.create_product(f"SKU-{unique.upper()}", "VPS", "Servers", "compute", ["eu-west-1"])
        written("product.create-product", "product.created", "product", made, "created")
        ticket = support.open(tenant, uuid.uuid4(), "VPS unreachable")
        written("support.open", "support.ticket-created", "ticket", ticket, "created")
    loose = identity.register(tenant, f"loose-{unique}@example.com", "Bob")  # no span active: the last event
    written("identity.register", "identity.user-registered", "user", loose, "registered")

    for commands, service in ((identity, "identity"), (product, "product"), (support, "support")):
        report = deliver(settings, commands.engine, commands.emit, wait=True)
        if not report.published:
            print(f"{service}: {report.queued} event(s) not relayed", file=sys.stderr)
            return 1

    expected = {e["event_id"] for e in events}
    handled: dict[str, str | None] = {}

    def handler(event: schemas.Envelope, context: HandlerContext) -> None:
        handled[str(event.event_id)] = context.trace_id

    consumer = consumer_from(settings, group_id=f"traced-outbox-{unique}",
                             handlers={t: handler for t in EVENT_TYPES}, idempotency=False,
                             accept=lambda event: str(event.event_id) in expected)
    deadline = time.monotonic() + 60
    while set(handled) != expected and time.monotonic() < deadline:
        consumer.poll_once(0.5)
    consumer.close()
    print(json.dumps({"known": {"trace": known_trace, "span": known_span}, "events": events,
                      "handled": handled}))
    return 0 if set(handled) == expected else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
