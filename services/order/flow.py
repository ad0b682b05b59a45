"""Reads one business flow back from Kafka: every record with the flow's key since a moment.

Used by `cloud-factory order show` and the tests. Starts each partition at
`offsets_for_times(since)`, so only the flow's era is read however long the topics have grown, and
verifies each record's signature.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import Message

import schemas
from core.settings import Settings
from messaging import ReadTimeout, TopicReader
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
    """Every record of `topics` from `since_ms` up to each partition's end, all partitions at once
    (what arrived within 30 s when the broker is slow)."""
    with TopicReader(settings.bootstrap_servers, group_prefix="flow-reader") as reader:
        known = set(reader.topic_names())
        ranges = [r for topic in topics if topic in known for r in reader.to_end(topic, since_ms=since_ms)]
        try:
            yield from reader.read(ranges, timeout_s=30)
        except ReadTimeout:
            return


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
