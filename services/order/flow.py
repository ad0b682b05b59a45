"""Reads one business flow back from Kafka: every record with the flow's key since a moment.

Used by `cloud-factory order show` and the tests. Starts each partition at
`offsets_for_times(since)`, so only the flow's era is read however long the topics have grown, and
verifies each record's signature.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, Message, TopicPartition

import schemas
from core.settings import Settings
from messaging.wiring import keyring_from

__all__ = ["FlowRecord", "read_dlq", "read_flow"]


@dataclass(frozen=True)
class FlowRecord:
    envelope: schemas.Envelope
    headers: dict[str, str]
    signature_ok: bool
    timestamp_ms: int
    topic: str


def _scan(settings: Settings, topics: list[str], since_ms: int) -> Iterator[Message]:
    """Every record of `topics` from `since_ms` up to each partition's end, all partitions at once."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"flow-reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=10)
        wanted = [
            TopicPartition(t, p, since_ms)
            for t in topics
            if t in metadata.topics
            for p in metadata.topics[t].partitions
        ]
        assignment, ends = [], {}
        for tp in consumer.offsets_for_times(wanted, timeout=10) if wanted else []:
            if tp.offset < 0:
                continue
            _, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high > tp.offset:
                assignment.append(tp)
                ends[(tp.topic, tp.partition)] = high - 1
        if not assignment:
            return
        consumer.assign(assignment)
        deadline = time.monotonic() + 30
        while ends and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            key = (msg.topic(), msg.partition())
            if key not in ends:
                continue
            yield msg
            if msg.offset() >= ends[key]:
                del ends[key]
    finally:
        consumer.close()


def read_flow(
    settings: Settings, correlation_id: str, event_types: list[str], since_ms: int
) -> list[FlowRecord]:
    """The flow's records on those event types' topics, oldest first (by record timestamp)."""
    keyring = keyring_from(settings)
    topics = [schemas.topic_for(t, env=settings.env) for t in event_types]
    records = []
    for msg in _scan(settings, topics, since_ms):
        if (msg.key() or b"").decode() != correlation_id:
            continue
        headers = list(msg.headers() or [])
        check = keyring.verify(msg.value(), headers)
        records.append(
            FlowRecord(
                schemas.decode(msg.value()),
                {k: (v or b"").decode() for k, v in headers},
                check.ok,
                msg.timestamp()[1],
                msg.topic(),
            )
        )
    records.sort(key=lambda r: (r.timestamp_ms, r.envelope.occurred_at))
    return records


def read_dlq(
    settings: Settings, event_types: list[str] | str, since_ms: int, *, correlation_id: str | None = None
) -> list[tuple[str, bytes, dict[str, str]]]:
    """Dead-lettered records (topic, value, headers) of those types, optionally of one flow only."""
    types = [event_types] if isinstance(event_types, str) else event_types
    topics = [schemas.dlq_topic_for(t, env=settings.env) for t in types]
    return [
        (msg.topic(), msg.value(), {k: (v or b"").decode() for k, v in (msg.headers() or [])})
        for msg in _scan(settings, topics, since_ms)
        if correlation_id is None or (msg.key() or b"").decode() == correlation_id
    ]
