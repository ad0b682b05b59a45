"""What a CLI command does after its transaction: try to get its events onto Kafka right away.

The command's rows and events are already committed to the outbox, so this step can only make the
wait shorter, never lose anything: one inline relay attempt (short broker timeout), and with
`wait` more attempts until the command's own rows are published or `timeout_s` passes. When a
worker's relay already holds the queue's head, the inline attempt steps aside and the wait watches
the worker publish.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine, Table

from core.settings import Settings
from messaging.outbox.relay import OutboxRelay
from messaging.wiring import producer_from

__all__ = ["DeliveryReport", "QueuedEvents", "broker_reachable", "deliver", "explain"]


class QueuedEvents(Protocol):
    """What a command queued: the outbox `table` and the ids it `written` there (a service's
    `OutboxEmitter` with `track=True`)."""

    @property
    def table(self) -> Table: ...

    @property
    def written(self) -> list[int]: ...

INLINE_DELIVERY_TIMEOUT_MS = 3000


def broker_reachable(bootstrap: str, timeout_s: float = 1.0) -> bool:
    """Whether any bootstrap address accepts a TCP connection: a down broker makes the CLI say
    "queued" at once instead of waiting out the client's timeouts."""
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


@dataclass(frozen=True)
class DeliveryReport:
    queued: int  # how many of the command's events are still only in the outbox
    total: int

    @property
    def published(self) -> bool:
        return self.queued == 0


def deliver(
    settings: Settings, engine: Engine, emitter: QueuedEvents, *, wait: bool, timeout_s: float = 60.0
) -> DeliveryReport:
    ids = list(emitter.written)
    if not ids:
        return DeliveryReport(0, 0)
    if not wait and not broker_reachable(settings.bootstrap_servers):
        return DeliveryReport(len(ids), len(ids))
    producer = producer_from(settings, fallback=False, delivery_timeout_ms=INLINE_DELIVERY_TIMEOUT_MS)
    relay = OutboxRelay(engine, emitter.table, producer, ack_timeout_s=INLINE_DELIVERY_TIMEOUT_MS / 1000 + 2)
    deadline = time.monotonic() + timeout_s
    while True:
        relay.drain()
        queued = relay.pending(ids)
        if queued == 0 or not wait or time.monotonic() > deadline:
            return DeliveryReport(queued, len(ids))
        time.sleep(0.2)


def explain(report: DeliveryReport, service: str, *, wait: bool) -> str | None:
    """The line a CLI prints when its events are not on Kafka yet (None when they are)."""
    if report.published:
        return None
    what = f"{report.queued} event(s) queued in the {service} outbox, not yet on Kafka"
    if wait:
        return f"{what}: gave up waiting (the command itself is committed; the events are kept)"
    return f"{what}; `cloud-factory worker {service}` (or the next {service} command) publishes them"
