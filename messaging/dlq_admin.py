"""What the `cloud-factory dlq` commands do: read DLQ topics, show one record, redrive, discard."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

import schemas
from messaging.deadletter import DeadLetter, strip_dlq_headers
from messaging.dlq import Outcome
from messaging.dlq_store import DlqPosition, DlqStore
from messaging.errors import PermissionDeniedError
from messaging.producer import Delivery, EventProducer, record_headers

__all__ = ["DlqEntry", "discard", "list_dlq", "read_entry", "redrive"]

_TRACE_HEADERS = ("traceparent", "tracestate")


@dataclass(frozen=True)
class DlqEntry:
    position: DlqPosition
    letter: DeadLetter
    timestamp: dt.datetime | None


def _reader(bootstrap_servers: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "cloud-factory-dlq-cli",
                     "enable.auto.commit": False, "log_level": 3})


def _entry(msg) -> DlqEntry:  # type: ignore[no-untyped-def]
    kind, millis = msg.timestamp()
    when = dt.datetime.fromtimestamp(millis / 1000, dt.UTC) if kind and millis > 0 else None
    return DlqEntry(DlqPosition(msg.topic(), msg.partition(), msg.offset()),
                    DeadLetter.from_record(msg.key(), msg.value(), msg.headers()), when)


def list_dlq(bootstrap_servers: str, *, env: str, contains: str = "", limit: int = 100) -> list[DlqEntry]:
    """The most recent `limit` records of every DLQ topic of `env` (whose name contains `contains`)."""
    reader = _reader(bootstrap_servers)
    try:
        topics = [name for name in reader.list_topics(timeout=10).topics
                  if name.startswith(f"cloud-factory.{env}.") and name.endswith(".dlq") and contains in name]
        assignment, expected = [], 0
        for topic in sorted(topics):
            for partition in reader.list_topics(topic, timeout=10).topics[topic].partitions:
                low, high = reader.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                if high > low:
                    start = max(low, high - limit)
                    assignment.append(TopicPartition(topic, partition, start))
                    expected += high - start
        entries: list[DlqEntry] = []
        if assignment:
            reader.assign(assignment)
            misses = 0
            while len(entries) < expected and misses < 10:
                batch = reader.consume(500, 0.5)
                misses = 0 if batch else misses + 1
                entries += [_entry(m) for m in batch if m.error() is None]
        entries.sort(key=lambda e: (e.timestamp or dt.datetime.min.replace(tzinfo=dt.UTC)), reverse=True)
        return entries[:limit]
    finally:
        reader.close()


def read_entry(bootstrap_servers: str, position: DlqPosition) -> DlqEntry:
    reader = _reader(bootstrap_servers)
    try:
        reader.assign([TopicPartition(position.topic, position.partition, position.offset)])
        for _ in range(20):
            msg = reader.poll(0.5)
            if msg is not None and msg.error() is None and msg.offset() == position.offset:
                return _entry(msg)
        raise LookupError(f"no DLQ record at {position}")
    finally:
        reader.close()


def redrive(entry: DlqEntry, producer: EventProducer, store: DlqStore, *, note: str = "",
            force_resign: bool = False) -> Delivery:
    """Decode (upcasting to the latest version), re-sign and re-publish to the original topic.

    Same eventId, key and trace headers, so consumers' idempotency keys recognise what already ran.
    Re-signing vouches for the record as its publisher, so the record's own signature must verify and
    its signer be the type's publisher (a record refused only for its age is fine): otherwise
    `PermissionDeniedError`, unless `force_resign` (an operator who checked it by hand). Raises
    `schemas.ContractError` for a record that cannot be decoded (discard it instead) or whose
    publisher's signing key this process lacks (`SignatureError`), LookupError when the value of a
    record dead-lettered as a reference is not in PostgreSQL.
    """
    letter = entry.letter
    original = store.full_value(letter)  # a reference's value comes from PostgreSQL
    envelope = schemas.decode(original)
    if not force_resign:
        why = _unvouched(original, letter.headers, envelope, producer.keyring)
        if why is not None:
            raise PermissionDeniedError(f"{why}: redriving would sign it as "
                                        f"{schemas.catalog.require(envelope.event_type).publisher.value}")
    value = schemas.encode(envelope)
    trace = [(k, v) for k, v in strip_dlq_headers(letter.headers) if k in _TRACE_HEADERS]
    # Re-signed as the type's publisher (the operator's keyring must hold its key), so it is fresh again.
    signer = producer.keyring.as_signer(schemas.catalog.require(envelope.event_type).publisher)
    headers = [h for h in record_headers(envelope, value, signer) if h[0] not in _TRACE_HEADERS]
    delivery = producer.publish_raw(letter.original_topic,
                                    key=letter.key or str(envelope.correlation_id).encode(),
                                    value=value, headers=[*headers, *trace])
    store.record(entry.position, letter, Outcome.REDRIVEN.value, note or f"redriven as {envelope.version}",
                 correlation_id=str(envelope.correlation_id), tenant_id=envelope.tenant_id)
    return delivery


def _unvouched(value: bytes, headers: list[tuple[str, bytes]], envelope: schemas.Envelope,
               keyring: schemas.Keyring) -> str | None:
    """Why the dead-lettered record's own signature does not vouch for it, or None when it does."""
    check = keyring.verify(value, strip_dlq_headers(headers))
    if not check.ok:
        return f"its own signature is {check.status.value} ({check.detail})"
    violation = schemas.signer_violation(envelope, check)
    return violation[1] if violation is not None else None


def discard(entry: DlqEntry, store: DlqStore, *, reason: str) -> int:
    """Abandon a record on purpose; the audit row says who decided what and why."""
    record_id = store.record(entry.position, entry.letter, Outcome.DISCARDED.value, reason)
    store.resolve_incident(record_id)
    return record_id
