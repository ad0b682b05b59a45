"""CloudEvents 1.0 binary-mode mirror headers (Kafka protocol binding).

Our value stays the full envelope; these `ce_*` headers only mirror its metadata so that a stock
CloudEvents consumer can read the record (it sees the envelope JSON as the event's data).
"""

from __future__ import annotations

import datetime as dt
from functools import cache

from schemas._internal.envelope import Envelope

__all__ = ["CE_HEADERS", "CE_SOURCE_PREFIX", "cloudevent_headers", "dataschema_uri"]

CE_SOURCE_PREFIX = "/cloud-factory/"
SPEC_VERSION = b"1.0"
CONTENT_TYPE = b"application/json"
#: Every header `cloudevent_headers` writes, in the order written (`ce_causationid` only when set).
CE_HEADERS = ("ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "ce_dataschema",
              "ce_correlationid", "ce_causationid", "ce_tenantid", "content-type")


def dataschema_uri(event_type: str, version: str) -> str:
    """Stable URN naming the JSON Schema of one (type, version); also the schema files' `$id`."""
    return f"urn:cloud-factory:events:{event_type}:{version}"


@cache
def _source(producer: str) -> bytes:
    return f"{CE_SOURCE_PREFIX}{producer}".encode()


@cache
def _dataschema(event_type: str, version: str) -> bytes:
    return dataschema_uri(event_type, version).encode()


def cloudevent_headers(envelope: Envelope, *, event_id: bytes | None = None,
                       correlation_id: bytes | None = None) -> list[tuple[str, bytes]]:
    """`ce_*` headers (plus `content-type`) describing `envelope`; `ce_causationid` only when set.

    `event_id`/`correlation_id` are the ids as ASCII bytes when the caller already has them (the
    producer writes them into other headers and the key too), so each UUID is formatted once.
    """
    occurred = envelope.occurred_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    causation = None if envelope.causation_id is None else str(envelope.causation_id).encode()
    values = (SPEC_VERSION, event_id or str(envelope.event_id).encode(), envelope.event_type.encode(),
              _source(envelope.producer), occurred.encode(),
              _dataschema(envelope.event_type, envelope.version),
              correlation_id or str(envelope.correlation_id).encode(), causation, envelope.tenant_id.encode(),
              CONTENT_TYPE)
    return [(name, value) for name, value in zip(CE_HEADERS, values, strict=True) if value is not None]
