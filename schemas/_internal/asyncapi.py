"""AsyncAPI 3.0 document of the whole catalog.

Channels are topics (one per event type plus its DLQ); each service gets `send` operations for what it
publishes and `receive` operations for what it consumes (every version, since consumers upcast), plus a
`send` to the DLQ of every topic it consumes. Edge processes (the HTTP API) get the same `receive` and
dead-letter operations, named and described as edge processes: they are not domain services. Messages carry the envelope as payload and the signature
and CloudEvents mirror as headers; the record key is the correlation id.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import models_json_schema

from schemas._internal.catalog import Catalog, CatalogEntry
from schemas._internal.jsonschema import catalog_metadata, example_envelope
from schemas._internal.routing import DLQ_SUFFIX, TOPIC_PREFIX
from schemas._internal.services import EdgeProcess, Service

__all__ = ["ASYNCAPI_VERSION", "DOCUMENT_VERSION", "asyncapi_document"]

ASYNCAPI_VERSION = "3.0.0"
DOCUMENT_VERSION = "1.0.0"
_REF = "#/components/schemas/{model}"

_HEADERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Kafka headers: HMAC signature over the exact value bytes, plus a CloudEvents 1.0 "
    "binary-mode mirror of the envelope metadata.",
    "required": [
        "x-cf-signature",
        "x-cf-key-id",
        "ce_specversion",
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_time",
    ],
    "properties": {
        "x-cf-signature": {
            "type": "string",
            "pattern": "^sha256=[0-9a-f]{64}$",
            "description": "HMAC-SHA256 of the record value, hex.",
        },
        "x-cf-key-id": {
            "type": "string",
            "pattern": "^[A-Za-z0-9._-]{1,64}$",
            "description": "Id of the key that signed (key rotation).",
        },
        "ce_specversion": {"const": "1.0"},
        "ce_id": {"type": "string", "format": "uuid", "description": "= eventId"},
        "ce_type": {"type": "string", "description": "= eventType"},
        "ce_source": {"type": "string", "description": "/cloud-factory/{producer}"},
        "ce_time": {"type": "string", "format": "date-time", "description": "= occurredAt"},
        "ce_dataschema": {"type": "string", "description": "URN of the JSON Schema of this type and version"},
        "ce_correlationid": {"type": "string", "format": "uuid", "description": "= correlationId"},
        "ce_causationid": {
            "type": "string",
            "format": "uuid",
            "description": "= causationId (absent if null)",
        },
        "ce_tenantid": {"type": "string", "description": "= tenantId"},
        "content-type": {"const": "application/json"},
    },
}


def asyncapi_document(catalog: Catalog) -> dict[str, Any]:
    """The AsyncAPI 3.0 document (a JSON-compatible dict) for `catalog`."""
    models = [(model, "validation") for e in catalog.values() for model in e.envelopes.values()]
    refs, defs = models_json_schema(models, by_alias=True, ref_template=_REF)  # type: ignore[arg-type]
    schemas: dict[str, Any] = {"RecordHeaders": _HEADERS_SCHEMA, **defs.get("$defs", {})}

    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for entry in catalog.values():
        message_refs = {}
        for version, model in entry.envelopes.items():
            message_id = f"{entry.event_type}.{version}"
            messages[message_id] = _message(entry, version, refs[(model, "validation")]["$ref"])
            message_refs[version] = {"$ref": f"#/components/messages/{message_id}"}
        for channel_id, address, what in (
            (entry.event_type, f"{TOPIC_PREFIX}.{{env}}.{entry.event_type}.v1", entry.summary),
            (
                entry.event_type + DLQ_SUFFIX,
                f"{TOPIC_PREFIX}.{{env}}.{entry.event_type}.v1{DLQ_SUFFIX}",
                f"Dead letters of {entry.event_type}: records a consumer rejected (contract or signature "
                "errors) or gave up on after its retry profile.",
            ),
        ):
            channels[channel_id] = {
                "address": address,
                "title": channel_id,
                "description": what,
                "parameters": {"env": {"$ref": "#/components/parameters/env"}},
                "messages": message_refs,
            }
        operations.update(_operations(entry))

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Cloud Factory domain events",
            "version": DOCUMENT_VERSION,
            "description": "Signed domain events exchanged by the seven Cloud Factory services. Edge processes "
            "(the HTTP order API, operations `edge-*`) read some of them for projections of their own; they "
            "publish none and are no domain service. Topic major "
            "version v1 is shared by every payload version of a type; the envelope's `version` is the "
            "payload schema version and consumers upcast older ones.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "Local development stack",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "parameters": {
                "env": {
                    "description": "Deployment environment.",
                    "default": "dev",
                    "examples": ["dev", "staging", "prod"],
                },
            },
            "messages": messages,
            "schemas": schemas,
        },
    }


def _message(entry: CatalogEntry, version: str, payload_ref: str) -> dict[str, Any]:
    example = example_envelope(entry, version)
    value = json.loads(type(example).__pydantic_serializer__.to_json(example, by_alias=True))
    return {
        "name": entry.event_type,
        "title": f"{entry.event_type} {version}",
        "summary": entry.summary,
        "contentType": "application/json",
        "headers": {"$ref": "#/components/schemas/RecordHeaders"},
        "payload": {"$ref": payload_ref},
        "correlationId": {
            "description": "Shared by every event of a flow; also the record key.",
            "location": "$message.payload#/correlationId",
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "format": "uuid", "description": "correlationId"},
                "bindingVersion": "0.5.0",
            }
        },
        "examples": [{"name": f"{entry.event_type}-{version}", "payload": value}],
        "x-cloud-factory": catalog_metadata(entry, version),
    }


def _operations(entry: CatalogEntry) -> dict[str, Any]:
    channel = {"$ref": f"#/channels/{entry.event_type}"}
    dlq = {"$ref": f"#/channels/{entry.event_type}{DLQ_SUFFIX}"}
    latest = {"$ref": f"#/channels/{entry.event_type}/messages/{entry.latest_version}"}
    every = [{"$ref": f"#/channels/{entry.event_type}/messages/{v}"} for v in entry.versions]
    every_dlq = [{"$ref": f"#/channels/{entry.event_type}{DLQ_SUFFIX}/messages/{v}"} for v in entry.versions]
    ops: dict[str, Any] = {
        f"{entry.publisher.value}.send.{entry.event_type}": {
            "action": "send",
            "channel": channel,
            "title": f"{_name(entry.publisher)} publishes {entry.event_type}",
            "messages": [latest],
        }
    }
    for consumer in entry.consumers:
        ops[f"{consumer.value}.receive.{entry.event_type}"] = {
            "action": "receive",
            "channel": channel,
            "title": f"{_name(consumer)} consumes {entry.event_type}",
            "description": f"Retry profile {entry.retry_profile.value}; older versions are upcast on read.",
            "messages": every,
        }
        ops[f"{consumer.value}.send.{entry.event_type}{DLQ_SUFFIX}"] = {
            "action": "send",
            "channel": dlq,
            "title": f"{_name(consumer)} dead-letters {entry.event_type}",
            "messages": every_dlq,
        }
    for edge in entry.edge_consumers:
        ops[f"edge-{edge.value}.receive.{entry.event_type}"] = {
            "action": "receive",
            "channel": channel,
            "title": f"{_edge_name(edge)} consumes {entry.event_type}",
            "description": f"An edge process, not a domain service: it keeps a projection of its own. "
            f"Retry profile {entry.retry_profile.value}; older versions are upcast on read.",
            "messages": every,
        }
        ops[f"edge-{edge.value}.send.{entry.event_type}{DLQ_SUFFIX}"] = {
            "action": "send",
            "channel": dlq,
            "title": f"{_edge_name(edge)} dead-letters {entry.event_type}",
            "messages": every_dlq,
        }
    return ops


def _name(service: Service) -> str:
    return f"{service.value.capitalize()} service"


def _edge_name(edge: EdgeProcess) -> str:
    return {EdgeProcess.API: "HTTP API (edge process)"}[edge]
