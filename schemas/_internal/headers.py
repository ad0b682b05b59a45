"""The Kafka headers of a platform record, named once: the producer writes them from these names and
the AsyncAPI export describes them from the same names, so the document cannot list a different set.
"""

from __future__ import annotations

from typing import Any

from core.tracing import TRACE_HEADERS
from schemas._internal.cloudevents import CE_HEADERS
from schemas._internal.envelope import UUID4_PATTERN
from schemas._internal.keys import KEY_ID_PATTERN
from schemas._internal.signing import KEY_ID_HEADER, SIGNATURE_HEADER, SIGNED_AT_HEADER

__all__ = ["EVENT_ID_HEADER", "EVENT_TYPE_HEADER", "RECORD_HEADERS", "RECORD_HEADERS_REQUIRED",
           "record_headers_schema"]

EVENT_TYPE_HEADER = "x-cf-event-type"
EVENT_ID_HEADER = "x-cf-event-id"

#: Every header a record may carry, in the producer's order (`messaging.producer.record_headers`).
RECORD_HEADERS = (SIGNATURE_HEADER, KEY_ID_HEADER, SIGNED_AT_HEADER, EVENT_TYPE_HEADER, EVENT_ID_HEADER,
                  *CE_HEADERS, *TRACE_HEADERS)
#: Those written on every record: the causation id only exists past a flow's first event, the trace
#: context only when a span is current.
RECORD_HEADERS_REQUIRED = tuple(h for h in RECORD_HEADERS if h not in {"ce_causationid", *TRACE_HEADERS})

_UUID4 = {"type": "string", "format": "uuid", "pattern": UUID4_PATTERN}
_UUID = {"type": "string", "format": "uuid"}

# What each header holds; a name in RECORD_HEADERS without an entry here fails the export.
_DESCRIBED: dict[str, dict[str, Any]] = {
    SIGNATURE_HEADER: {
        "type": "string",
        "pattern": "^(sha256=[0-9a-f]{64}|ed25519=[A-Za-z0-9_-]{86})$",
        "description": "Signature over `<x-cf-signed-at>\\n<value>`: HMAC-SHA256 (hex) or Ed25519 "
        "(base64url).",
    },
    KEY_ID_HEADER: {"type": "string", "pattern": KEY_ID_PATTERN.pattern,
                    "description": "Id of the key that signed (key rotation)."},
    SIGNED_AT_HEADER: {"type": "string", "pattern": "^[0-9]{1,16}$",
                       "description": "Signing time, milliseconds since the epoch (signed too)."},
    EVENT_TYPE_HEADER: {"type": "string", "description": "= eventType (routing without parsing the value)."},
    EVENT_ID_HEADER: {**_UUID4, "description": "= eventId"},
    "ce_specversion": {"const": "1.0"},
    "ce_id": {**_UUID4, "description": "= eventId"},
    "ce_type": {"type": "string", "description": "= eventType"},
    "ce_source": {"type": "string", "description": "/cloud-factory/{producer}"},
    "ce_time": {"type": "string", "format": "date-time", "description": "= occurredAt"},
    "ce_dataschema": {"type": "string", "description": "URN of the JSON Schema of this type and version"},
    "ce_correlationid": {**_UUID, "description": "= correlationId"},
    "ce_causationid": {**_UUID, "description": "= causationId (absent if null)"},
    "ce_tenantid": {"type": "string", "description": "= tenantId"},
    "content-type": {"const": "application/json"},
    "traceparent": {"type": "string", "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                    "description": "W3C trace context of the `publish` span."},
    "tracestate": {"type": "string", "description": "W3C trace state, when the publishing context had one."},
}


def record_headers_schema(extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """JSON Schema of a record's headers (plus `extra` optional ones, e.g. a re-published letter's)."""
    return {
        "type": "object",
        "description": "Kafka headers: the signature over the exact value bytes, routing ids, a CloudEvents "
        "1.0 binary-mode mirror of the envelope metadata and the W3C trace context.",
        "required": list(RECORD_HEADERS_REQUIRED),
        "properties": {**{name: _DESCRIBED[name] for name in RECORD_HEADERS}, **(extra or {})},
    }
