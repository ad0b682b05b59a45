"""What the hostile service tests share: records sent as an attacker would (signed events naming
another tenant's flow, a captured record sent again byte for byte a day later) and waits that prove
a record was dealt with — the consumer group committed past it — before anything is asserted absent.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from sqlalchemy import Engine, text

import schemas
from core.settings import Settings
from messaging import TopicReader
from messaging.dlq.letter import DeadLetter
from messaging.wiring import producer_from

__all__ = [
    "Captured",
    "capture",
    "committed_past",
    "dead_letter_of",
    "emitted",
    "example",
    "expire_keys",
    "publish",
    "records_of",
    "resend",
    "signed_event",
]


@dataclass(frozen=True)
class Captured:
    """A record exactly as it sits on its topic (what an eavesdropper could copy)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def example(event_type: str, **fields: object) -> dict:
    """The contract's example payload of `event_type` (latest version) with `fields` replaced."""
    from schemas.examples import example_data

    return {**example_data(event_type, schemas.catalog.require(event_type).latest_version), **fields}


def signed_event(
    event_type: str, data: dict, *, tenant_id: str, correlation_id: uuid.UUID
) -> schemas.Envelope:
    """A new event as its catalog publisher would send it (producer `<publisher>-service`)."""
    publisher = schemas.catalog.require(event_type).publisher
    name = getattr(publisher, "value", str(publisher))
    return schemas.new_event(
        event_type,
        data,
        tenant_id=tenant_id,
        correlation_id=correlation_id,
        actor=schemas.Actor(id="tests", type=schemas.ActorType.SYSTEM),
        producer=f"{name}-service",
    )


def publish(settings: Settings, envelope: schemas.Envelope) -> Captured:
    """Sign `envelope` as its catalog publisher and publish it; the record as the broker stored it."""
    publisher = schemas.catalog.require(envelope.event_type).publisher
    delivery = producer_from(settings, service=publisher, fallback=False).publish(envelope)
    return capture(settings, delivery.topic, delivery.partition, delivery.offset)


def capture(settings: Settings, topic: str, partition: int, offset: int) -> Captured:
    with TopicReader(settings.bootstrap_servers, group_prefix="eavesdrop") as reader:
        try:
            msg = reader.read_one(topic, partition, offset, timeout_s=30)
        except (LookupError, TimeoutError):
            raise AssertionError(f"no record at {topic}/{partition}/{offset}") from None
    return Captured(topic, partition, offset, msg.key(), msg.value(),
                    [(k, v or b"") for k, v in msg.headers() or []])


def resend(settings: Settings, record: Captured) -> Captured:
    """Send a captured record again with plain confluent-kafka: same topic, key, value and headers."""
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    stored: list[tuple[int, int]] = []
    producer.produce(
        record.topic,
        value=record.value,
        key=record.key,
        headers=record.headers,
        partition=record.partition,
        on_delivery=lambda err, msg: stored.append((msg.partition(), msg.offset())) if err is None else None,
    )
    assert producer.flush(30) == 0 and stored, "the broker did not take the re-sent record"
    partition, offset = stored[0]
    return Captured(record.topic, partition, offset, record.key, record.value, record.headers)


def expire_keys(engine: Engine, event_id: uuid.UUID) -> int:
    """Make every idempotency key of `event_id` look a day old (expired), as `purge_expired` or the
    24 h success TTL would leave it: the consumer takes the event for a new one."""
    with engine.begin() as conn:
        return conn.execute(
            text(
                "UPDATE messaging.idempotency_keys SET expires_at = now() - interval '1 day' "
                "WHERE event_id = :e"
            ),
            {"e": event_id},
        ).rowcount


_COORDINATOR_NOT_READY = frozenset({KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
                                    KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError._TIMED_OUT})


def committed_past(settings: Settings, group: str, record: Captured, *, timeout: float = 60.0) -> None:
    """Wait until `group` committed an offset beyond `record`: the consumer handled or dead-lettered it
    and whatever it emitted or wrote for it is already there."""
    probe = Consumer(
        {"bootstrap.servers": settings.bootstrap_servers, "group.id": group, "enable.auto.commit": False}
    )
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                [tp] = probe.committed([TopicPartition(record.topic, record.partition)], timeout=10)
            except KafkaException as exc:  # e.g. NOT_COORDINATOR while a fresh broker elects one
                if exc.args[0].code() not in _COORDINATOR_NOT_READY and not exc.args[0].retriable():
                    raise
            else:
                if tp.offset > record.offset:
                    return
            assert time.monotonic() < deadline, f"{group} never committed past {record.topic}/{record.offset}"
            time.sleep(0.2)
    finally:
        probe.close()


def records_of(settings: Settings, topic: str) -> list[schemas.Envelope]:
    """Every event on `topic` now, read up to each partition's end (nothing to wait for)."""
    return [schemas.decode(msg.value()) for msg in _raw_records(settings, topic)]


def emitted(settings: Settings, service: str, tenant: str) -> list[schemas.Envelope]:
    """Every event `service` publishes that `tenant` has on this test's topics."""
    return [
        envelope
        for entry in schemas.catalog.published_by(service)
        for envelope in records_of(settings, schemas.topic_for(entry.event_type, env=settings.env))
        if envelope.tenant_id == tenant
    ]


def dead_letter_of(settings: Settings, record: Captured) -> DeadLetter:
    """The DLQ record of `record` (call after `committed_past`: it is on the DLQ topic by then)."""
    dlq = schemas.dlq_topic_for(schemas.decode(record.value).event_type, env=settings.env)
    letters = [
        DeadLetter.from_record(msg.key(), msg.value(), msg.headers()) for msg in _raw_records(settings, dlq)
    ]
    mine = [
        letter
        for letter in letters
        if letter.original_offset == record.offset and letter.original_partition == record.partition
    ]
    assert mine, f"no dead letter of {record.topic}/{record.partition}/{record.offset} in {dlq}"
    return mine[-1]


def _raw_records(settings: Settings, topic: str) -> list:
    """Every record of `topic` up to the ends its partitions have now (a missing topic has none)."""
    with TopicReader(settings.bootstrap_servers) as reader:
        try:
            ranges = reader.to_end(topic)
        except LookupError:
            return []
        try:
            return list(reader.read(ranges, timeout_s=30))
        except TimeoutError:
            raise AssertionError(f"could not read {topic} to its end") from None


def captured_where(settings: Settings, topic: str, match) -> Captured:
    """The one record of `topic` whose decoded envelope `match` accepts, exactly as stored."""
    found = [msg for msg in _raw_records(settings, topic) if match(schemas.decode(msg.value()))]
    assert len(found) == 1, f"{len(found)} records on {topic} match"
    msg = found[0]
    return Captured(topic, msg.partition(), msg.offset(), msg.key(), msg.value(),
                    [(k, v or b"") for k, v in msg.headers() or []])
