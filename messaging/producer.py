"""The signed, ordered event producer, with the file fallback behind it.

Each record: value = the encoded envelope, key = correlationId (the Java-compatible
`murmur2_random` partitioner keeps a business flow on one partition), headers = signature + key id
+ signed-at (the producer signs as its one service, and only that service's event types), CloudEvents
mirror headers and the W3C trace context of the `publish` span. The producer is
idempotent with `acks=all`; `publish` returns only once the broker acknowledged the record — or,
when a spool is attached and no broker answers, once the record is fsynced into the spool, from
which a background replayer re-publishes it as soon as Kafka is back. While the spool holds
anything, new records queue behind it, so per-correlationId order survives an outage.

`send` is the pipelined form (no wait per record; `flush` waits for all), for bulk publishing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from opentelemetry import trace

import schemas
from core.logs import bind_event_ids
from core.tracing import child_traceparent, fast_inject, header_value, recording, scope
from messaging.client_logs import client_config
from messaging.errors import BrokerUnavailableError, PublishError
from messaging.fallback.replay import ReplayReport, SpoolReplayer
from messaging.fallback.spool import FallbackSpool, SpooledRecord
from messaging.metrics import METRICS
from messaging.topics import TopicGuard, TopicLayout

__all__ = ["Delivery", "DeliveryCallback", "EventProducer", "PublishError", "record_headers"]

log = logging.getLogger(__name__)

#: Delivery timeout of the spool replayer's records (see `EventProducer.__init__`).
REPLAY_DELIVERY_TIMEOUT_MS = 120_000

# Delivery errors that mean "no broker took it", i.e. the record belongs in the spool.
UNAVAILABLE = frozenset({
    KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,
    KafkaError.REQUEST_TIMED_OUT, KafkaError.NETWORK_EXCEPTION, KafkaError._QUEUE_FULL,
})


@dataclass(frozen=True)
class Delivery:
    """Where the broker stored a record; `spooled` when it went to the file fallback instead."""

    topic: str
    partition: int
    offset: int
    spooled: bool = False


DeliveryCallback = Callable[[PublishError | None, Delivery | None], None]


def record_headers(envelope: schemas.Envelope, value: bytes, keyring: schemas.Keyring,
                   *, key: bytes | None = None,
                   trace_headers: list[tuple[str, bytes]] | None = None) -> list[tuple[str, bytes]]:
    """Every header a platform record carries, in a stable order (`key`: the record key, i.e. the
    correlation id as bytes, when the caller has it already; `trace_headers`: the trace context to
    carry, by default the current span's)."""
    event_id = str(envelope.event_id).encode()
    return [
        *keyring.sign(value, event_type=envelope.event_type),
        (schemas.EVENT_TYPE_HEADER, envelope.event_type.encode()),
        (schemas.EVENT_ID_HEADER, event_id),
        *schemas.cloudevent_headers(envelope, event_id=event_id, correlation_id=key),
        *(fast_inject() if trace_headers is None else trace_headers),
    ]


def _error(topic: str, err: KafkaError) -> PublishError:
    if err.code() in UNAVAILABLE or err.retriable():
        return BrokerUnavailableError(f"delivery to {topic} failed: {err.str()}")
    return PublishError(f"delivery to {topic} failed: {err.str()}", retriable=False)


class EventProducer:
    """Thread-safe wrapper over one confluent-kafka Producer (plus an optional fallback spool)."""

    def __init__(self, bootstrap_servers: str, keyring: schemas.Keyring, *, env: str = "dev",
                 delivery_timeout_ms: int = 30_000, extra_config: dict[str, object] | None = None,
                 spool: FallbackSpool | None = None, replay_interval: float = 1.0,
                 layout: TopicLayout | None = None, replay_in_background: bool = True,
                 client_id: str = "cloud-factory-producer") -> None:
        """`replay_in_background=False` leaves a spool found at start to an explicit `replay_spool`
        (the `fallback replay` command reports what it replayed itself). `client_id` names the client
        in its log lines (the spool replayer's is `<client_id>-replay`)."""
        self.keyring = keyring
        self.env = env
        self.spool = spool
        # Missing topics are created with `layout` before their first record, never by the broker.
        self.topics = TopicGuard(bootstrap_servers, layout=layout or TopicLayout())
        config = {
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
            "linger.ms": 5,
            "delivery.timeout.ms": delivery_timeout_ms,
            "compression.type": "lz4",
            "log_level": 3,
            **(extra_config or {}),
        }
        self._producer = Producer({**config, **client_config(str(config.get("client.id", client_id)))})
        self._lock = threading.Lock()
        # One waiting thread serves the delivery callbacks at a time; the others sleep on their own
        # acknowledgement (the callback wakes them), so N publishers waiting are not N pollers.
        self._polling = threading.Lock()
        self._replayer = None
        if spool is not None:
            # Replay sends a whole batch at once; with a short delivery timeout an early record of a
            # partition could time out while a later one lands (a reorder). Its own producer waits
            # long enough for a broker that is still bringing partitions online; direct publishing
            # resumes only after the replayed batch was flushed, so the two never overlap.
            replay_timeout_ms = max(delivery_timeout_ms, REPLAY_DELIVERY_TIMEOUT_MS)
            replay_producer = Producer({**config, "delivery.timeout.ms": replay_timeout_ms,
                                        **client_config(f"{config.get('client.id', client_id)}-replay")})
            self._replayer = SpoolReplayer(replay_producer, spool, interval=replay_interval,
                                           ensure_topic=self.topics.ensure,
                                           flush_timeout=replay_timeout_ms / 1000 + 5)
        if self._replayer is not None and spool is not None and spool.has_pending() and replay_in_background:
            self._replayer.start()

    # -- envelopes ------------------------------------------------------------------------------
    def topic_for(self, envelope: schemas.Envelope) -> str:
        return schemas.topic_for(envelope.event_type, env=self.env)

    def publish(self, envelope: schemas.Envelope, *, topic: str | None = None,
                timeout: float = 30.0) -> Delivery:
        """Encode, sign and send one event; block until the broker acknowledged (or the spool holds) it."""
        topic = topic or self.topic_for(envelope)
        with _PublishScope(topic, envelope.event_type, envelope.event_id, envelope.correlation_id,
                           envelope.tenant_id) as trace_headers:
            value = schemas.encode(envelope)
            key = str(envelope.correlation_id).encode()
            headers = record_headers(envelope, value, self.keyring, key=key, trace_headers=trace_headers)
            return self.publish_raw(topic, key=key, value=value, headers=headers, timeout=timeout)

    def send(self, envelope: schemas.Envelope, *, topic: str | None = None,
             on_delivery: DeliveryCallback | None = None) -> None:
        """Pipelined publish: queue one event and return; `flush` waits for every acknowledgement."""
        topic = topic or self.topic_for(envelope)
        with _PublishScope(topic, envelope.event_type, envelope.event_id, envelope.correlation_id,
                           envelope.tenant_id) as trace_headers:
            value = schemas.encode(envelope)
            key = str(envelope.correlation_id).encode()
            headers = record_headers(envelope, value, self.keyring, key=key, trace_headers=trace_headers)
            self.send_raw(topic, key=key, value=value, headers=headers, on_delivery=on_delivery)

    def send_relayed(self, topic: str, *, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]],
                     parent: trace.SpanContext, event_type: str, event_id: str,
                     on_delivery: DeliveryCallback | None = None) -> None:
        """Pipelined send of a record built earlier (an outbox row), in a `publish {topic}` span under
        `parent` — the context of the span that wrote it — whose trace headers are appended to
        `headers`: the trace goes on from the writer across the outbox, as if it had published."""
        tenant = header_value(headers, "ce_tenantid")
        correlation_id = key.decode(errors="replace") if key else None
        with _PublishScope(topic, event_type, event_id, correlation_id, tenant.decode() if tenant else None,
                           parent=parent) as trace_headers:
            self.send_raw(topic, key=key, value=value, headers=[*headers, *trace_headers],
                          on_delivery=on_delivery)

    # -- raw records ----------------------------------------------------------------------------
    def publish_raw(self, topic: str, *, key: bytes | None, value: bytes,
                    headers: list[tuple[str, bytes]], timeout: float = 30.0) -> Delivery:
        """Send pre-built bytes (re-publishing, DLQ, replay) and wait for the acknowledgement."""
        if self._spooling():
            return self._to_spool(topic, key, value, headers, "spool not empty: queued behind it")
        outcome: list[tuple[PublishError | None, Delivery | None]] = []
        done = threading.Event()

        def on_delivery(err: PublishError | None, delivery: Delivery | None) -> None:
            outcome.append((err, delivery))
            done.set()

        self.send_raw(topic, key=key, value=value, headers=headers, on_delivery=on_delivery, _spool=False)
        deadline = time.monotonic() + timeout
        while not done.is_set():
            if self._polling.acquire(blocking=False):
                try:
                    # `flush`, not `poll`: while somebody waits for an acknowledgement, records are sent
                    # at once instead of lingering (`linger.ms` batches pipelined sends; a caller that
                    # blocks on its record would wait it out for nothing — measured: ~5 ms per publish,
                    # ~55 ms of an unloaded order's created→delivered). Callbacks are served alike.
                    self._producer.flush(0.01)
                finally:
                    self._polling.release()
            else:
                done.wait(0.02)
            if time.monotonic() > deadline and not done.is_set():
                error: PublishError = BrokerUnavailableError(
                    f"no acknowledgement from the broker for {topic}")
                break
        else:
            error, delivery = outcome[0]
            if error is None:
                assert delivery is not None
                return delivery
        if isinstance(error, BrokerUnavailableError) and self.spool is not None:
            return self._to_spool(topic, key, value, headers, str(error))
        raise error

    def send_raw(self, topic: str, *, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]],
                 on_delivery: DeliveryCallback | None = None, _spool: bool = True) -> None:
        """Queue pre-built bytes; the callback gets (None, Delivery) or (PublishError, None).

        With a spool attached, a record the broker could not take is spooled and reported as a
        spooled `Delivery`, never as an error.
        """
        if _spool and self._spooling():
            delivery = self._to_spool(topic, key, value, headers, "spool not empty: queued behind it")
            if on_delivery:
                on_delivery(None, delivery)
            return

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                METRICS.add("produced")
                if on_delivery:
                    on_delivery(None, Delivery(msg.topic(), msg.partition(), msg.offset()))
                return
            error = _error(topic, err)
            if _spool and self.spool is not None and isinstance(error, BrokerUnavailableError):
                delivery = self._to_spool(topic, key, value, headers, str(error))
                if on_delivery:
                    on_delivery(None, delivery)
            elif on_delivery:
                on_delivery(error, None)
            else:
                log.error("%s", error)

        self.topics.ensure(topic)
        try:
            self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=delivered)
        except BufferError:
            self._producer.poll(0.1)  # serve callbacks to make room, then try once more
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=delivered)
            except BufferError as exc:
                raise BrokerUnavailableError(f"local queue full while producing to {topic}") from exc
        except KafkaException as exc:
            raise PublishError(f"cannot produce to {topic}: {exc}", retriable=False) from exc
        self._producer.poll(0)

    # -- spool ----------------------------------------------------------------------------------
    def _spooling(self) -> bool:
        return self.spool is not None and self.spool.has_pending()

    def _to_spool(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]],
                  why: str) -> Delivery:
        assert self.spool is not None and self._replayer is not None
        self.spool.append([SpooledRecord(topic, key, value, list(headers))])
        METRICS.add("spooled")
        log.warning("record for %s spooled to %s (%s)", topic, self.spool.directory, why)
        self._replayer.start()
        return Delivery(topic, -1, -1, spooled=True)

    def replay_spool(self, on_progress: Callable[[ReplayReport], None] | None = None) -> ReplayReport:
        """Re-publish what the spool holds now (the background replayer does this by itself)."""
        if self._replayer is None:
            return ReplayReport()
        return self._replayer.replay(on_progress)

    # -- lifecycle ------------------------------------------------------------------------------
    def flush(self, timeout: float = 30.0) -> int:
        """Deliver what is queued; returns how many records are still undelivered."""
        return self._producer.flush(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Flush on shutdown (undeliverable records end up in the spool when one is attached)."""
        if self._replayer is not None:
            self._replayer.stop()
        self.flush(timeout)


class _PublishScope:
    """The `publish {topic}` span plus the event's ids bound to the log lines inside it; entering it
    gives the trace headers the record carries.

    The span is a child of the current span, or of `parent` when given (an outbox relay continues the
    trace of the row's writer). Recording, it is a real PRODUCER span made current (its child ids go
    out in `traceparent`). Ids only (no exporter), nothing would ever see the span but the consumer,
    so only its id is made (`child_traceparent`) and no context is switched: log lines inside name
    the caller's span.
    """

    __slots__ = ("_span", "_logs", "_topic", "_event_type", "_event_id", "_parent")

    def __init__(self, topic: str, event_type: str, event_id: object, correlation_id: object,
                 tenant_id: str | None, *, parent: trace.SpanContext | None = None) -> None:
        self._topic, self._event_type, self._event_id, self._parent = topic, event_type, event_id, parent
        self._logs = bind_event_ids(correlation_id, event_id, tenant_id)
        self._span: scope | None = None

    def __enter__(self) -> list[tuple[str, bytes]]:
        self._logs.__enter__()
        if not recording():
            return child_traceparent(self._parent)
        attributes = {"messaging.system": "kafka", "messaging.destination.name": self._topic,
                      "cloudfactory.event_type": self._event_type,
                      "cloudfactory.event_id": str(self._event_id)}
        self._span = scope(f"publish {self._topic}", parent=self._parent, kind=trace.SpanKind.PRODUCER,
                           attributes=attributes, tracer_name="cloud_factory.producer")
        self._span.__enter__()
        return fast_inject()

    def __exit__(self, *exc: object) -> None:
        if self._span is not None:
            self._span.__exit__(*exc)
        self._logs.__exit__(*exc)
