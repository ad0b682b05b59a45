"""The dead-letter record: the original value and headers plus why, where and how often it failed.

A DLQ record on the original topic's DLQ topic (`schemas.dlq_topic_of`: `<topic>.dlq`) keeps the
original key, value (so the signature still verifies) and headers, and adds `x-cf-dlq-*` headers:
error class, reason, exception type, attempts, first/last failure time, original
topic/partition/offset, handler, consumer group and how many times the DLQ handler already
re-published it (`x-cf-dlq-retries`, which survives the round trip).

A record whose dead letter would not fit the producer's limit (`MAX_DLQ_RECORD_BYTES`) travels as a
*reference*, so the partition behind it is not held up: the record carries the original headers and
only the first KiB of the value (`REFERENCE_HEAD_BYTES`), plus `x-cf-dlq-value-size` (bytes of the
whole value), `x-cf-dlq-value-sha256` (hex) and `x-cf-dlq-value-stored` (`postgresql`: the whole
value is in `messaging.dlq_values`, keyed by that sha256; `DlqStore.full_value` reads it back).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import schemas
from messaging.errors import ErrorClass

__all__ = ["DLQ_HEADERS", "DLQ_PREFIX", "DLQ_REFERENCE_HEADERS", "DLQ_RETRIES", "MAX_DLQ_RECORD_BYTES",
           "REFERENCE_HEAD_BYTES", "DeadLetter", "strip_dlq_headers"]

DLQ_PREFIX = "x-cf-dlq-"
DLQ_RETRIES = "x-cf-dlq-retries"

#: A dead letter larger than this goes as a reference: librdkafka's default `message.max.bytes`
#: (1,000,000, below the broker's 1 MiB default), less room for the record's framing.
MAX_DLQ_RECORD_BYTES = 1_000_000 - 16_384
#: How much of the value a reference carries.
REFERENCE_HEAD_BYTES = 1024
#: Where a reference's whole value is kept.
STORED_IN_POSTGRESQL = "postgresql"

#: Every bookkeeping header a dead letter gets (name → what it holds), in the order written;
#: `DeadLetter.record_headers` writes exactly these, and the generated AsyncAPI lists them from here.
DLQ_HEADERS = MappingProxyType({
    DLQ_PREFIX + "reason": "Why the record failed (at most 2,000 characters).",
    DLQ_PREFIX + "error-class": "The failure's error class (transient, validation, not-found, ...).",
    DLQ_PREFIX + "exception": "The exception type that made the consumer give up (may be empty).",
    DLQ_PREFIX + "attempts": "How many times the consumer tried the record.",
    DLQ_PREFIX + "first-failure": "ISO 8601 time of the first failure.",
    DLQ_PREFIX + "last-failure": "ISO 8601 time of the last failure.",
    DLQ_PREFIX + "original": "topic/partition/offset of the original record.",
    DLQ_PREFIX + "original-topic": "The topic the record was read from.",
    DLQ_PREFIX + "original-partition": "Its partition.",
    DLQ_PREFIX + "original-offset": "Its offset.",
    DLQ_PREFIX + "handler": "The handler that failed (may be empty).",
    DLQ_PREFIX + "group": "The consumer group that dead-lettered it (may be empty).",
    DLQ_RETRIES: "How often the DLQ processor already re-published the record to its original topic.",
})
#: Added only to a reference (a letter too big to carry its whole value).
DLQ_REFERENCE_HEADERS = MappingProxyType({
    DLQ_PREFIX + "value-size": "Bytes of the whole original value (the record carries its first KiB).",
    DLQ_PREFIX + "value-sha256": "SHA-256 (hex) of the whole value; its key in messaging.dlq_values.",
    DLQ_PREFIX + "value-stored": f"Where the whole value is kept: `{STORED_IN_POSTGRESQL}`.",
})


def strip_dlq_headers(headers: Sequence[tuple[str, bytes | None]]) -> list[tuple[str, bytes]]:
    """The record's own headers, without any DLQ bookkeeping (retry count included)."""
    return [(k, v or b"") for k, v in headers if not k.startswith(DLQ_PREFIX)]


def _header(headers: Sequence[tuple[str, bytes | None]], name: str) -> str | None:
    found = None
    for key, value in headers:
        if key == name and value is not None:
            found = value.decode(errors="replace")
    return found


def _time(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class DeadLetter:
    """Everything known about one dead-lettered record."""

    original_topic: str
    original_partition: int
    original_offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]  # the original headers, DLQ bookkeeping stripped
    error_class: ErrorClass
    reason: str
    exception: str = ""
    attempts: int = 1
    first_failure: dt.datetime = field(default_factory=_now)
    last_failure: dt.datetime = field(default_factory=_now)
    handler: str | None = None
    group: str | None = None
    dlq_retries: int = 0
    value_size: int | None = None  # set on a reference: the whole value's size ...
    value_sha256: str | None = None  # ... and digest; `value` then holds only its head

    @property
    def is_reference(self) -> bool:
        return self.value_sha256 is not None

    def as_reference(self, head: int = REFERENCE_HEAD_BYTES) -> DeadLetter:
        """The same letter carrying only the value's first `head` bytes, its size and sha256."""
        if self.is_reference:
            return self
        return dataclasses.replace(self, value=self.value[:head], value_size=len(self.value),
                                   value_sha256=hashlib.sha256(self.value).hexdigest())

    def record_size(self) -> int:
        """Bytes of key, value and headers of the DLQ record (what the producer's limit counts)."""
        return len(self.key or b"") + len(self.value) + sum(len(k) + len(v) for k, v in self.record_headers())

    @property
    def topic(self) -> str:
        return schemas.dlq_topic_of(self.original_topic)

    @property
    def event_id(self) -> str | None:
        return _header(self.headers, "x-cf-event-id") or _header(self.headers, "ce_id")

    @property
    def event_type(self) -> str | None:
        return _header(self.headers, "x-cf-event-type")

    def record_headers(self) -> list[tuple[str, bytes]]:
        values = [self.reason[:2000], self.error_class.value, self.exception, str(self.attempts),
                  self.first_failure.isoformat(), self.last_failure.isoformat(),
                  f"{self.original_topic}/{self.original_partition}/{self.original_offset}",
                  self.original_topic, str(self.original_partition), str(self.original_offset),
                  self.handler or "", self.group or "", str(self.dlq_retries)]
        extra = list(zip(DLQ_HEADERS, values, strict=True))
        if self.is_reference:
            reference = [str(self.value_size), self.value_sha256 or "", STORED_IN_POSTGRESQL]
            extra += zip(DLQ_REFERENCE_HEADERS, reference, strict=True)
        return [*self.headers, *((name, value.encode()) for name, value in extra)]

    @classmethod
    def from_record(cls, key: bytes | None, value: bytes | None,
                    headers: Sequence[tuple[str, bytes | None]] | None) -> DeadLetter:
        """Parse a record read from a DLQ topic (tolerates missing bookkeeping)."""
        headers = list(headers or [])

        def get(name: str) -> str | None:
            return _header(headers, DLQ_PREFIX + name)

        try:
            error_class = ErrorClass(get("error-class") or "")
        except ValueError:
            error_class = ErrorClass.VALIDATION  # written by something that is not this runtime
        original = (get("original") or "//").rsplit("/", 2)
        return cls(
            original_topic=get("original-topic") or original[0],
            original_partition=int(get("original-partition") or original[1] or -1),
            original_offset=int(get("original-offset") or original[2] or -1),
            key=key,
            value=value or b"",
            headers=strip_dlq_headers(headers),
            error_class=error_class,
            reason=get("reason") or "",
            exception=get("exception") or "",
            attempts=int(get("attempts") or 1),
            first_failure=_time(get("first-failure")) or _now(),
            last_failure=_time(get("last-failure")) or _now(),
            handler=get("handler") or None,
            group=get("group") or None,
            dlq_retries=int(get("retries") or 0),
            value_size=int(get("value-size") or 0) if get("value-sha256") else None,
            value_sha256=get("value-sha256") or None,
        )
