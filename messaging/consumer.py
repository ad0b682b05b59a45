"""The at-least-once event consumer: verify → decode → handle → commit that one offset.

An offset is committed only after its message was handled or dead-lettered, so a crash anywhere
before that redelivers it. A failing handler rewinds its partition to the failed message and backs
off, so the partition keeps its order while other partitions flow.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, Message, TopicPartition
from opentelemetry import trace

import schemas
from cloud_factory.tracing import extract_context, tracer
from messaging.producer import EventProducer

__all__ = ["EventConsumer", "Handler", "HandlerContext"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandlerContext:
    """Where a message came from and how it was checked; handed to every handler."""

    topic: str
    partition: int
    offset: int
    headers: list[tuple[str, bytes]]
    signature: schemas.SignatureCheck
    trace_id: str | None = None
    span_id: str | None = None


Handler = Callable[[schemas.Envelope, HandlerContext], None]


@dataclass
class _Backoff:
    attempts: dict[tuple[str, int, int], int] = field(default_factory=dict)

    def next_delay(self, key: tuple[str, int, int]) -> float:
        attempt = self.attempts.get(key, 0) + 1
        self.attempts[key] = attempt
        return min(0.2 * 2 ** (attempt - 1), 5.0)

    def clear(self, key: tuple[str, int, int]) -> None:
        self.attempts.pop(key, None)


class EventConsumer:
    """One Kafka consumer in a group, dispatching each event type to its handler."""

    def __init__(self, bootstrap_servers: str, *, group_id: str, topics: Iterable[str],
                 handlers: Mapping[str, Handler], keyring: schemas.Keyring,
                 signing_mode: schemas.SigningMode, dlq_producer: EventProducer,
                 extra_config: dict[str, object] | None = None) -> None:
        self.handlers = dict(handlers)
        self.keyring = keyring
        self.signing_mode = signing_mode
        self.dlq_producer = dlq_producer
        self.topics = list(topics)
        self._backoff = _Backoff()
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap_servers,
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            **(extra_config or {}),
        })
        self._consumer.subscribe(self.topics, on_revoke=self._on_revoke)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Offsets are committed per message already; nothing is pending on revoke."""
        log.info("partitions revoked: %s", [(p.topic, p.partition) for p in partitions])

    def run(self, stop: threading.Event, *, poll_timeout: float = 0.5) -> None:
        try:
            while not stop.is_set():
                self.poll_once(poll_timeout)
        finally:
            self.close()

    def poll_once(self, timeout: float = 0.5) -> bool:
        """Handle at most one message; True when one was processed (handled or dead-lettered)."""
        msg = self._consumer.poll(timeout)
        if msg is None:
            return False
        if msg.error():
            if msg.error().code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", msg.error())
            return False
        return self._process(msg)

    def _process(self, msg: Message) -> bool:
        headers = list(msg.headers() or [])
        value = msg.value() or b""
        key = (msg.topic(), msg.partition(), msg.offset())
        parent = extract_context(headers)
        with tracer("cloud_factory.consumer").start_as_current_span(
            f"consume {msg.topic()}", context=parent, kind=trace.SpanKind.CONSUMER
        ) as span:
            span_context = span.get_span_context()
            try:
                check = self.keyring.verify(value, headers)
                schemas.enforce_signature(check, self.signing_mode)
                envelope = schemas.decode(value)
            except schemas.ContractError as exc:
                self._dead_letter(msg, headers, reason=str(exc), error_class=type(exc).__name__)
                self._commit(msg)
                return True
            handler = self.handlers.get(envelope.event_type)
            if handler is not None:
                context = HandlerContext(msg.topic(), msg.partition(), msg.offset(), headers, check,
                                         f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}")
                try:
                    handler(envelope, context)
                except Exception as exc:  # the handler failed: retry this message in place
                    delay = self._backoff.next_delay(key)
                    log.warning("handler for %s failed (%s); retrying in %.1fs", envelope.event_type, exc, delay)
                    self._consumer.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset()))
                    time.sleep(delay)
                    return False
            self._backoff.clear(key)
            self._commit(msg)
            return True

    def _dead_letter(self, msg: Message, headers: list[tuple[str, bytes]], *, reason: str, error_class: str) -> None:
        event_type = _header(headers, "x-cf-event-type")
        topic = f"{msg.topic()}.dlq" if not msg.topic().endswith(".dlq") else msg.topic()
        log.warning("dead-lettering %s[%d]@%d (%s): %s", msg.topic(), msg.partition(), msg.offset(),
                    event_type, reason)
        self.dlq_producer.publish_raw(topic, key=msg.key(), value=msg.value() or b"", headers=[
            *headers,
            ("x-cf-dlq-reason", reason.encode()),
            ("x-cf-dlq-error-class", error_class.encode()),
            ("x-cf-dlq-original", f"{msg.topic()}/{msg.partition()}/{msg.offset()}".encode()),
        ])

    def _commit(self, msg: Message) -> None:
        self._consumer.commit(message=msg, asynchronous=False)

    def committed_offset(self, topic: str, partition: int) -> int | None:
        [tp] = self._consumer.committed([TopicPartition(topic, partition)], timeout=10)
        return None if tp.offset == OFFSET_INVALID else tp.offset

    def close(self) -> None:
        self._consumer.close()


def _header(headers: list[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == name and value is not None:
            return value.decode(errors="replace")
    return None
