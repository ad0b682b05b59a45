"""JSON Schema (draft 2020-12) of every event type and version, envelope included.

Non-Python consumers and tooling validate against these; `$id` is the URN that CloudEvents'
`ce_dataschema` header carries. Each schema has one example record built from `schemas.examples`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from schemas._internal.catalog import CatalogEntry
from schemas._internal.cloudevents import dataschema_uri
from schemas._internal.envelope import Actor, ActorType, Envelope
from schemas.examples import example_data

__all__ = ["DIALECT", "catalog_metadata", "event_schema", "example_envelope"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Fixed metadata so generated files are byte-for-byte reproducible.
_EXAMPLE_EVENT_ID = uuid.UUID("5b0d6c1e-2f3a-4b5c-8d6e-7f8091a2b3c4")
_EXAMPLE_CORRELATION = uuid.UUID("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d")
_EXAMPLE_CAUSATION = uuid.UUID("b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e")
_EXAMPLE_TIME = dt.datetime(2025, 7, 1, 12, 0, tzinfo=dt.UTC)


def example_envelope(entry: CatalogEntry, version: str) -> Envelope:
    """A complete, valid envelope of (type, version) with fixed ids and time."""
    model = entry.envelope_model(version)
    data = entry.payload_model(version).model_validate_json(
        json.dumps(example_data(entry.event_type, version))
    )
    return model(
        event_id=_EXAMPLE_EVENT_ID,
        event_type=entry.event_type,
        version=version,
        tenant_id="acme-corp",
        correlation_id=_EXAMPLE_CORRELATION,
        causation_id=None if entry.event_type == "order.created" else _EXAMPLE_CAUSATION,
        actor=Actor(id=f"{entry.publisher.value}-service", type=ActorType.SERVICE),
        occurred_at=_EXAMPLE_TIME,
        producer=f"{entry.publisher.value}-service",
        data=data,
    )


def catalog_metadata(entry: CatalogEntry, version: str) -> dict[str, Any]:
    """The `x-cloud-factory` annotation: routing facts a schema reader needs next to the shape."""
    return {
        "eventType": entry.event_type,
        "version": version,
        "latestVersion": entry.latest_version,
        "publisher": entry.publisher.value,
        "consumers": [c.value for c in entry.consumers],
        **({"edgeConsumers": [e.value for e in entry.edge_consumers]} if entry.edge_consumers else {}),
        "customerFacing": entry.customer_facing,
        "retryProfile": entry.retry_profile.value,
        "topic": f"cloud-factory.{{env}}.{entry.event_type}.v1",
    }


def event_schema(entry: CatalogEntry, version: str | None = None) -> dict[str, Any]:
    """The JSON Schema of one (type, version) envelope; default version is the latest."""
    version = version or entry.latest_version
    model = entry.envelope_model(version)
    generated = model.model_json_schema(by_alias=True, mode="validation")
    generated.pop("title", None)
    generated.pop("description", None)
    example = json.loads(
        model.__pydantic_serializer__.to_json(example_envelope(entry, version), by_alias=True)
    )
    return {
        "$schema": DIALECT,
        "$id": dataschema_uri(entry.event_type, version),
        "title": f"{entry.event_type} {version}",
        "description": entry.summary,
        **generated,
        "examples": [example],
        "x-cloud-factory": catalog_metadata(entry, version),
    }
