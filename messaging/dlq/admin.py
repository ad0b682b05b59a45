"""What the `cloud-factory dlq` commands do: read DLQ topics, show one record, redrive, discard."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from confluent_kafka import Message

import schemas
from messaging.dlq.letter import DeadLetter, strip_dlq_headers
from messaging.dlq.outcomes import Outcome
from messaging.dlq.store import DlqPosition, DlqStore
from messaging.errors import PermissionDeniedError
from messaging.producer import Delivery, EventProducer, record_headers
from messaging.reader import ReadTimeout, TopicReader

__all__ = ["DlqEntry", "discard", "list_dlq", "read_entry", "redrive"]

_TRACE_HEADERS = ("traceparent", "tracestate")


@dataclass(frozen=True)
class DlqEntry:
    position: DlqPosition
    letter: DeadLetter
    timestamp: dt.datetime | None


def _reader(bootstrap_servers: str) -> TopicReader:
    return TopicReader(bootstrap_servers, group_prefix="cloud-factory-dlq-cli")


def _entry(msg: Message) -> DlqEntry:
    kind, millis = msg.timestamp()
    when = dt.datetime.fromtimestamp(millis / 1000, dt.UTC) if kind and millis > 0 else None
    return DlqEntry(DlqPosition(msg.topic(), msg.partition(), msg.offset()),
                    DeadLetter.from_record(msg.key(), msg.value(), msg.headers()), when)


def list_dlq(bootstrap_servers: str, *, env: str, contains: str = "", limit: int = 100,
             timeout_s: float = 10.0) -> list[DlqEntry]:
    """The most recent `limit` records of every DLQ topic of `env` (whose name contains `contains`);
    what could be read within `timeout_s` when the broker is slow."""
    with _reader(bootstrap_servers) as reader:
        topics = sorted(name for name in reader.topic_names()
                        if schemas.is_dlq_topic(name, env) and contains in name)
        ranges = [r for topic in topics for r in reader.to_end(topic, last=limit)]
        entries: list[DlqEntry] = []
        try:
            for msg in reader.read(ranges, timeout_s=timeout_s):
                entries.append(_entry(msg))
        except ReadTimeout:
            pass  # show what arrived
    entries.sort(key=lambda e: (e.timestamp or dt.datetime.min.replace(tzinfo=dt.UTC)), reverse=True)
    return entries[:limit]


def read_entry(bootstrap_servers: str, position: DlqPosition, *, timeout_s: float = 10.0) -> DlqEntry:
    """The DLQ record at `position`; LookupError when there is none."""
    with _reader(bootstrap_servers) as reader:
        try:
            return _entry(reader.read_one(position.topic, position.partition, position.offset,
                                          timeout_s=timeout_s))
        except (LookupError, ReadTimeout) as exc:
            raise LookupError(f"no DLQ record at {position}") from exc


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
