"""CloudEvents 1.0 binary-mode mirror headers (Kafka protocol binding).

Our value stays the full envelope; these `ce_*` headers only mirror its metadata so that a stock
CloudEvents consumer can read the record (it sees the envelope JSON as the event's data).
"""

from __future__ import annotations

import datetime as dt
from functools import cache

from schemas._internal.envelope import Envelope

__all__ = ["CE_SOURCE_PREFIX", "cloudevent_headers", "dataschema_uri"]

CE_SOURCE_PREFIX = "/cloud-factory/"
SPEC_VERSION = b"1.0"
CONTENT_TYPE = b"application/json"


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
    headers = [
        ("ce_specversion", SPEC_VERSION),
        ("ce_id", event_id or str(envelope.event_id).encode()),
        ("ce_type", envelope.event_type.encode()),
        ("ce_source", _source(envelope.producer)),
        ("ce_time", occurred.encode()),
        ("ce_dataschema", _dataschema(envelope.event_type, envelope.version)),
        ("ce_correlationid", correlation_id or str(envelope.correlation_id).encode()),
        ("ce_tenantid", envelope.tenant_id.encode()),
        ("content-type", CONTENT_TYPE),
    ]
    if envelope.causation_id is not None:
        headers.insert(7, ("ce_causationid", str(envelope.causation_id).encode()))
    return headers
