"""AsyncAPI 3.1 document of the whole catalog, with Kafka bindings.

Channels are topics (one per event type plus its DLQ); each service gets `send` operations for what it
publishes and `receive` operations for what it consumes (every version, since consumers upcast), plus a
`send` to the DLQ of every topic it consumes. Edge processes (the HTTP API) get the same `receive` and
dead-letter operations, named and described as edge processes: they are not domain services. The DLQ
processor receives from every DLQ channel and re-publishes retried letters to the original channel.
Messages carry the envelope as payload and the signature, routing ids, CloudEvents mirror and trace
context as headers; a dead letter carries the original bytes plus the `x-cf-dlq-*` headers. The record
key is the correlation id; consumer groups are the operations' Kafka bindings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic.json_schema import models_json_schema

from schemas._internal.catalog import Catalog, CatalogEntry
from schemas._internal.headers import RECORD_HEADERS, record_headers_schema
from schemas._internal.jsonschema import catalog_metadata, example_envelope
from schemas._internal.routing import DLQ_SUFFIX, TOPIC_PREFIX
from schemas._internal.services import EdgeProcess, Service

__all__ = ["ASYNCAPI_VERSION", "DOCUMENT_VERSION", "KAFKA_BINDING_VERSION", "RuntimeFacts",
           "asyncapi_document"]

ASYNCAPI_VERSION = "3.1.0"
DOCUMENT_VERSION = "1.1.0"
KAFKA_BINDING_VERSION = "0.5.0"
_REF = "#/components/schemas/{model}"
_DEAD_LETTER = "dead-letter"


@dataclass(frozen=True)
class RuntimeFacts:
    """What the document states about the running platform that the catalog does not know: read by
    `cloud_factory.exports.runtime_facts` from the constants the consumers, the DLQ processor and the
    dead-letter writer use, so the export follows the code (this layer may not import them)."""

    consumer_groups: Mapping[Service | EdgeProcess, str]  # the group each consumer reads in
    dlq_group: str  # the DLQ processor's group
    dlq_headers: Mapping[str, str]  # header → meaning, written on every dead letter
    dlq_reference_headers: Mapping[str, str]  # ... and on a reference only
    dlq_retries_header: str  # kept when the DLQ processor re-publishes to the original topic
    partitions: int  # of each topic the platform creates
    replicas: int


def asyncapi_document(catalog: Catalog, facts: RuntimeFacts) -> dict[str, Any]:
    """The AsyncAPI 3.1 document (a JSON-compatible dict) for `catalog` as the platform runs it."""
    models = [(model, "validation") for e in catalog.values() for model in e.envelopes.values()]
    refs, defs = models_json_schema(models, by_alias=True, ref_template=_REF)  # type: ignore[arg-type]
    retries = {facts.dlq_retries_header: {
        "type": "string", "pattern": "^[0-9]+$",
        "description": "Only on a record the DLQ processor re-published: its DLQ round trips so far."}}
    schemas: dict[str, Any] = {
        "RecordHeaders": record_headers_schema(retries),
        "DeadLetterHeaders": _dead_letter_headers(facts),
        **defs.get("$defs", {}),
    }

    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for entry in catalog.values():
        message_refs = {}
        payload_refs = []
        for version, model in entry.envelopes.items():
            message_id = f"{entry.event_type}.{version}"
            payload_refs.append(refs[(model, "validation")]["$ref"])
            messages[message_id] = _message(entry, version, payload_refs[-1])
            message_refs[version] = {"$ref": f"#/components/messages/{message_id}"}
        dead_letter_id = f"{entry.event_type}.{_DEAD_LETTER}"
        messages[dead_letter_id] = _dead_letter_message(entry, payload_refs)
        address = f"{TOPIC_PREFIX}.{{env}}.{entry.event_type}.v1"
        for channel_id, topic, what, channel_messages in (
            (entry.event_type, address, entry.summary, message_refs),
            (
                entry.event_type + DLQ_SUFFIX,
                address + DLQ_SUFFIX,
                f"Dead letters of {entry.event_type}: records a consumer rejected (contract or signature "
                "errors) or gave up on after its retry profile.",
                {_DEAD_LETTER: {"$ref": f"#/components/messages/{dead_letter_id}"}},
            ),
        ):
            channels[channel_id] = {
                "address": topic,
                "title": channel_id,
                "description": what,
                "parameters": {"env": {"$ref": "#/components/parameters/env"}},
                "messages": channel_messages,
                "bindings": {"kafka": {"topic": topic, "partitions": facts.partitions,
                                       "replicas": facts.replicas,
                                       "bindingVersion": KAFKA_BINDING_VERSION}},
            }
        operations.update(_operations(entry, facts))

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Cloud Factory domain events",
            "version": DOCUMENT_VERSION,
            "description": "Signed domain events exchanged by the seven Cloud Factory services. Edge "
            "processes (the HTTP order API, operations `edge-*`) read some of them for projections of "
            "their own; they publish none and are no domain service. The DLQ processor (operations "
            "`dlq-processor.*`) reads every dead-letter topic and re-publishes retried letters. Topic major "
            "version v1 is shared by every payload version of a type; the envelope's `version` is the "
            "payload schema version and consumers upcast older ones. Consumer group ids are the base "
            "ones: an isolated run (`CF_WORKER_GROUP_SUFFIX`) appends its suffix.",
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


def _dead_letter_headers(facts: RuntimeFacts) -> dict[str, Any]:
    original = record_headers_schema()["properties"]
    bookkeeping = {**facts.dlq_headers, **facts.dlq_reference_headers}
    return {
        "type": "object",
        "description": "The original record's headers as they were (a record rejected for a missing or bad "
        "signature may lack some), plus the dead-letter bookkeeping.",
        "required": list(facts.dlq_headers),
        "properties": {
            **{name: original[name] for name in RECORD_HEADERS},
            **{name: {"type": "string", "description": what} for name, what in bookkeeping.items()},
        },
    }


def _key_binding() -> dict[str, Any]:
    return {"kafka": {"key": {"type": "string", "format": "uuid", "description": "correlationId"},
                      "bindingVersion": KAFKA_BINDING_VERSION}}


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
        "bindings": _key_binding(),
        "examples": [{"name": f"{entry.event_type}-{version}", "payload": value}],
        "x-cloud-factory": catalog_metadata(entry, version),
    }


def _dead_letter_message(entry: CatalogEntry, payload_refs: list[str]) -> dict[str, Any]:
    return {
        "name": f"{entry.event_type}.{_DEAD_LETTER}",
        "title": f"{entry.event_type} dead letter",
        "summary": f"A dead-lettered {entry.event_type} record: the original key and value bytes, unchanged "
        "(so the signature still verifies), and headers plus `x-cf-dlq-*`.",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "payload": {
            "description": "The original value bytes. Usually one of the type's envelopes; a record "
            "dead-lettered for a contract or signature error may be anything, and a reference (too big "
            "for a dead letter, `x-cf-dlq-value-sha256` set) carries only the value's first KiB.",
            "anyOf": [*({"$ref": ref} for ref in payload_refs),
                      {"description": "Any other bytes (see above)."}],
        },
        "bindings": _key_binding(),
    }


def _receive_binding(group: str) -> dict[str, Any]:
    return {"kafka": {"groupId": {"type": "string", "enum": [group]},
                      "bindingVersion": KAFKA_BINDING_VERSION}}


def _operations(entry: CatalogEntry, facts: RuntimeFacts) -> dict[str, Any]:
    channel = {"$ref": f"#/channels/{entry.event_type}"}
    dlq = {"$ref": f"#/channels/{entry.event_type}{DLQ_SUFFIX}"}
    latest = {"$ref": f"#/channels/{entry.event_type}/messages/{entry.latest_version}"}
    every = [{"$ref": f"#/channels/{entry.event_type}/messages/{v}"} for v in entry.versions]
    dead_letter = [{"$ref": f"#/channels/{entry.event_type}{DLQ_SUFFIX}/messages/{_DEAD_LETTER}"}]
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
            "bindings": _receive_binding(facts.consumer_groups[consumer]),
        }
        ops[f"{consumer.value}.send.{entry.event_type}{DLQ_SUFFIX}"] = {
            "action": "send",
            "channel": dlq,
            "title": f"{_name(consumer)} dead-letters {entry.event_type}",
            "messages": dead_letter,
        }
    for edge in entry.edge_consumers:
        ops[f"edge-{edge.value}.receive.{entry.event_type}"] = {
            "action": "receive",
            "channel": channel,
            "title": f"{_edge_name(edge)} consumes {entry.event_type}",
            "description": f"An edge process, not a domain service: it keeps a projection of its own. "
            f"Retry profile {entry.retry_profile.value}; older versions are upcast on read.",
            "messages": every,
            "bindings": _receive_binding(facts.consumer_groups[edge]),
        }
        ops[f"edge-{edge.value}.send.{entry.event_type}{DLQ_SUFFIX}"] = {
            "action": "send",
            "channel": dlq,
            "title": f"{_edge_name(edge)} dead-letters {entry.event_type}",
            "messages": dead_letter,
        }
    ops[f"dlq-processor.receive.{entry.event_type}{DLQ_SUFFIX}"] = {
        "action": "receive",
        "channel": dlq,
        "title": f"DLQ processor reads dead letters of {entry.event_type}",
        "description": "`cloud-factory dlq run`: retry, discard, alert or park each letter for manual "
        "review.",
        "messages": dead_letter,
        "bindings": _receive_binding(facts.dlq_group),
    }
    ops[f"dlq-processor.send.{entry.event_type}"] = {
        "action": "send",
        "channel": channel,
        "title": f"DLQ processor re-publishes retried {entry.event_type} letters",
        "description": f"The original value and headers, with `{facts.dlq_retries_header}` counting up.",
        "messages": every,
    }
    return ops


def _name(service: Service) -> str:
    return f"{service.value.capitalize()} service"


def _edge_name(edge: EdgeProcess) -> str:
    return {EdgeProcess.API: "HTTP API (edge process)"}[edge]
