"""Generated JSON Schemas and AsyncAPI: fresh, complete, internally consistent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloud_factory.exports import runtime_facts
from schemas import Service, catalog, decode
from schemas._internal.asyncapi import asyncapi_document
from schemas._internal.exports import GENERATED_DIR, render_files, stale_files, write_files


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return render_files(catalog, runtime_facts())


def test_committed_files_are_not_stale(rendered: dict[str, str]) -> None:
    stale = stale_files(catalog, runtime_facts(), GENERATED_DIR, rendered=rendered)
    assert stale == [], f"run `cloud-factory events generate`; stale: {stale[:5]}"


def test_staleness_check_detects_changes(tmp_path: Path, rendered: dict[str, str]) -> None:
    write_files(catalog, runtime_facts(), tmp_path)
    assert stale_files(catalog, runtime_facts(), tmp_path, rendered=rendered) == []
    target = tmp_path / "jsonschema" / "order.created" / "v2.json"
    target.write_text(target.read_text().replace('"v2"', '"v9"'))
    (tmp_path / "jsonschema" / "old.thing").mkdir()
    (tmp_path / "jsonschema" / "old.thing" / "v1.json").write_text("{}")
    (tmp_path / "asyncapi.json").unlink()
    assert stale_files(catalog, runtime_facts(), tmp_path, rendered=rendered) == [
        "asyncapi.json",
        "jsonschema/old.thing/v1.json",
        "jsonschema/order.created/v2.json",
    ]
    write_files(catalog, runtime_facts(), tmp_path)
    assert stale_files(catalog, runtime_facts(), tmp_path, rendered=rendered) == []
    assert not (tmp_path / "jsonschema" / "old.thing").exists()


def test_rendering_is_deterministic(rendered: dict[str, str]) -> None:
    assert render_files(catalog, runtime_facts()) == rendered


def test_one_schema_per_type_and_version(rendered: dict[str, str]) -> None:
    expected = {f"jsonschema/{t}/{v}.json" for t, e in catalog.items() for v in e.versions}
    assert {p for p in rendered if p.startswith("jsonschema/")} == expected
    assert len(expected) == sum(len(e.versions) for e in catalog.values()) >= 49 + 6


def test_schema_content(rendered: dict[str, str]) -> None:
    schema = json.loads(rendered["jsonschema/order.created/v2.json"])
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "urn:cloud-factory:events:order.created:v2"
    assert schema["properties"]["eventType"]["const"] == "order.created"
    assert schema["properties"]["version"]["const"] == "v2"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {
        "eventId",
        "eventType",
        "version",
        "tenantId",
        "correlationId",
        "causationId",
        "actor",
        "occurredAt",
        "producer",
        "data",
    }
    data = schema["$defs"][schema["properties"]["data"]["$ref"].split("/")[-1]]
    assert "lines" in data["properties"] and "totalCents" not in data["properties"]
    assert schema["$defs"]["ActorType"]["enum"] == ["user", "service", "system", "api_key"]
    assert schema["x-cloud-factory"]["latestVersion"] == "v3"


def test_schema_examples_are_valid_records(rendered: dict[str, str]) -> None:
    for path, text in rendered.items():
        if path.startswith("jsonschema/"):
            document = json.loads(text)
            (example,) = document["examples"]
            assert (
                decode(json.dumps(example).encode(), upcast=False).version
                == document["properties"]["version"]["const"]
            )


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref" and isinstance(v, str)] + [
            r for v in node.values() for r in _refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_asyncapi_structure() -> None:
    document = asyncapi_document(catalog, runtime_facts())
    assert document["asyncapi"] == "3.1.0"
    channels, operations = document["channels"], document["operations"]
    assert len(channels) == 98
    assert channels["order.fulfilled"]["address"] == "cloud-factory.{env}.order.fulfilled.v1"
    assert channels["order.fulfilled.dlq"]["address"] == "cloud-factory.{env}.order.fulfilled.v1.dlq"
    sends = [k for k, op in operations.items()
             if op["action"] == "send" and not k.endswith(".dlq") and not k.startswith("dlq-processor.")]
    receives = [k for k, op in operations.items() if op["action"] == "receive"]
    assert len(sends) == 49
    domain = [k for k in receives if not k.startswith(("edge-", "dlq-processor."))]
    assert len(domain) == sum(len(e.consumers) for e in catalog.values()) == 35  # the seven's matrix
    # The HTTP API is an edge process: it reads Identity's key events and is named as such, apart.
    assert sorted(k for k in receives if k.startswith("edge-")) == [
        "edge-api.receive.identity.api-key-created", "edge-api.receive.identity.api-key-revoked"]
    assert "not a domain service" in operations["edge-api.receive.identity.api-key-created"]["description"]
    assert all(Service(e.event_type.split(".")[0]) for e in catalog.edge_subscriptions("api"))
    assert sum(k.startswith("notification.receive.") for k in receives) == 24
    assert set(channels["order.created"]["messages"]) == {"v1", "v2", "v3"}
    assert operations["order.send.order.created"]["messages"] == [
        {"$ref": "#/channels/order.created/messages/v3"}
    ]
    assert len(operations["notification.receive.order.created"]["messages"]) == 3
    message = document["components"]["messages"]["order.created.v3"]
    assert message["headers"] == {"$ref": "#/components/schemas/RecordHeaders"}
    assert message["bindings"]["kafka"]["key"]["format"] == "uuid"


def test_asyncapi_refs_all_resolve() -> None:
    document = asyncapi_document(catalog, runtime_facts())
    refs = _refs(document)
    assert len(refs) > 500
    for ref in set(refs):
        _resolve(document, ref)
    assert "$defs" not in json.dumps(document)
