"""The signed, ordered event producer.

Each record: value = the encoded envelope, key = correlationId (the Java-compatible
`murmur2_random` partitioner keeps a business flow on one partition), headers = HMAC signature +
key id, CloudEvents mirror headers and the W3C trace context of the current span. The producer is
idempotent with `acks=all`; `publish` returns only once the broker acknowledged the record.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer

import schemas
from cloud_factory.tracing import inject_headers

__all__ = ["Delivery", "EventProducer", "PublishError", "record_headers"]


class PublishError(RuntimeError):
    """The broker did not acknowledge a record (timeout, broker down, topic missing)."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


@dataclass(frozen=True)
class Delivery:
    topic: str
    partition: int
    offset: int


def record_headers(envelope: schemas.Envelope, value: bytes, keyring: schemas.Keyring) -> list[tuple[str, bytes]]:
    """Every header a platform record carries, in a stable order."""
    return [
        *keyring.sign(value),
        ("x-cf-event-type", envelope.event_type.encode()),
        ("x-cf-event-id", str(envelope.event_id).encode()),
        *schemas.cloudevent_headers(envelope),
        *inject_headers(),
    ]


class EventProducer:
    """Thread-safe wrapper over one confluent-kafka Producer."""

    def __init__(self, bootstrap_servers: str, keyring: schemas.Keyring, *, env: str = "dev",
                 delivery_timeout_ms: int = 30_000, extra_config: dict[str, object] | None = None) -> None:
        self.keyring = keyring
        self.env = env
        self._producer = Producer({
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
            "linger.ms": 5,
            "delivery.timeout.ms": delivery_timeout_ms,
            "compression.type": "lz4",
            **(extra_config or {}),
        })
        self._lock = threading.Lock()

    def topic_for(self, envelope: schemas.Envelope) -> str:
        return schemas.topic_for(envelope.event_type, env=self.env)

    def publish(self, envelope: schemas.Envelope, *, topic: str | None = None, timeout: float = 30.0) -> Delivery:
        """Encode, sign and send one event; block until the broker acknowledged it."""
        value = schemas.encode(envelope)
        return self.publish_raw(topic or self.topic_for(envelope), key=str(envelope.correlation_id).encode(),
                                value=value, headers=record_headers(envelope, value, self.keyring),
                                timeout=timeout)

    def publish_raw(self, topic: str, *, key: bytes | None, value: bytes,
                    headers: list[tuple[str, bytes]], timeout: float = 30.0) -> Delivery:
        """Send pre-built bytes (re-publishing, DLQ, replay) and wait for the acknowledgement."""
        outcome: dict[str, object] = {}
        done = threading.Event()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            outcome["err"], outcome["msg"] = err, msg
            done.set()

        with self._lock:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
            except BufferError as exc:
                raise PublishError(f"local queue full while producing to {topic}", retriable=True) from exc
            except KafkaException as exc:
                raise PublishError(f"cannot produce to {topic}: {exc}", retriable=False) from exc
        while not done.is_set():
            self._producer.poll(0.05)
            timeout -= 0.05
            if timeout <= 0 and not done.is_set():
                raise PublishError(f"no acknowledgement from the broker for {topic}", retriable=True)
        err = outcome["err"]
        if err is not None:
            assert isinstance(err, KafkaError)
            raise PublishError(f"delivery to {topic} failed: {err.str()}", retriable=err.retriable())
        msg = outcome["msg"]
        assert isinstance(msg, Message)
        return Delivery(msg.topic(), msg.partition(), msg.offset())

    def flush(self, timeout: float = 30.0) -> int:
        """Deliver what is queued; returns how many records are still undelivered."""
        return self._producer.flush(timeout)

    def close(self) -> None:
        self.flush()
