"""The generated files tell the truth: every JSON Schema is a valid 2020-12 schema whose formats a
validator checks, every example passes it, a malformed event id fails it, and the AsyncAPI document
lists the headers the producer and the dead-letter writer really write."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator

import schemas
from cloud_factory.exports import runtime_facts
from core.tracing import scope
from messaging.dlq.letter import DeadLetter
from messaging.errors import ErrorClass
from messaging.producer import record_headers
from schemas import catalog
from schemas._internal.exports import render_files
from schemas._internal.jsonschema import example_envelope

_FORMATS = Draft202012Validator.FORMAT_CHECKER


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    return {path: json.loads(text) for path, text in render_files(catalog, runtime_facts()).items()
            if path.startswith("jsonschema/")}


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=_FORMATS)


def test_every_schema_is_valid_under_the_2020_12_metaschema(documents: dict[str, dict[str, Any]]) -> None:
    assert len(documents) >= 55
    for path, schema in documents.items():
        assert jsonschema.validators.validator_for(schema) is Draft202012Validator, path
        Draft202012Validator.check_schema(schema)


def test_a_broken_schema_fails_the_metaschema(documents: dict[str, dict[str, Any]]) -> None:
    broken = copy.deepcopy(documents["jsonschema/order.created/v3.json"])
    broken["type"] = 12
    with pytest.raises(jsonschema.SchemaError):
        Draft202012Validator.check_schema(broken)


def test_only_formats_a_validator_knows(documents: dict[str, dict[str, Any]]) -> None:
    found = {m for text in map(json.dumps, documents.values()) for m in _formats(json.loads(text))}
    assert found and found <= set(_FORMATS.checkers), found - set(_FORMATS.checkers)


def _formats(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {node["format"]} if isinstance(node.get("format"), str) else set()
        return own.union(*(_formats(v) for k, v in node.items() if k != "examples"))
    if isinstance(node, list):
        return set().union(*(_formats(v) for v in node))
    return set()


def test_every_example_validates(documents: dict[str, dict[str, Any]]) -> None:
    for path, schema in documents.items():
        (example,) = schema["examples"]
        errors = list(_validator(schema).iter_errors(example))
        assert not errors, (path, [e.message for e in errors])


@pytest.mark.parametrize("event_id", [
    "not-a-uuid",
    "5b0d6c1e-2f3a-1b5c-8d6e-7f8091a2b3c4",  # version 1: the envelope's UUID4 refuses it
    "5b0d6c1e-2f3a-4b5c-cd6e-7f8091a2b3c4",  # not the RFC 9562 variant: refused too
])
def test_a_bad_event_id_fails_every_schema(documents: dict[str, dict[str, Any]], event_id: str) -> None:
    for path, schema in documents.items():
        record = {**schema["examples"][0], "eventId": event_id}
        assert not _validator(schema).is_valid(record), path
        with pytest.raises(schemas.ContractError):
            schemas.decode(json.dumps(record).encode(), upcast=False)


def test_the_event_id_pattern_takes_what_the_producers_write(documents: dict[str, dict[str, Any]]) -> None:
    schema = documents["jsonschema/order.created/v3.json"]
    for event_id in (uuid.uuid4(), schemas.stable_event_id("order", "o-1")):
        assert _validator(schema).is_valid({**schema["examples"][0], "eventId": str(event_id)})


def _asyncapi_schemas() -> dict[str, Any]:
    return json.loads(render_files(catalog, runtime_facts())["asyncapi.json"])["components"]["schemas"]


def test_record_headers_schema_lists_what_the_producer_writes() -> None:
    entry = catalog.require("order.payment-confirmed")
    envelope = example_envelope(entry, entry.latest_version)
    keyring = schemas.Keyring.parse(f"{entry.publisher.value}/k1:s").as_signer(entry.publisher.value)
    value = schemas.encode(envelope)
    with scope("publish test"):
        trace = [("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"), ("tracestate", b"k=v")]
        written = record_headers(envelope, value, keyring, trace_headers=trace)
    headers = _asyncapi_schemas()["RecordHeaders"]
    names = [name for name, _ in written]
    documented = set(headers["properties"]) - {runtime_facts().dlq_retries_header}
    assert set(names) == documented
    assert set(headers["required"]) <= set(names)
    assert Draft202012Validator(headers, format_checker=_FORMATS).is_valid(
        {name: raw.decode() for name, raw in written})


def test_dead_letter_headers_schema_lists_what_a_dead_letter_gets() -> None:
    letter = DeadLetter("cloud-factory.dev.order.created.v1", 0, 7, b"k", b"x" * 4096,
                        [(schemas.EVENT_TYPE_HEADER, b"order.created")], ErrorClass.VALIDATION, "bad",
                        handler="h", group="g").as_reference()
    added = {name for name, _ in letter.record_headers()} - {schemas.EVENT_TYPE_HEADER}
    headers = _asyncapi_schemas()["DeadLetterHeaders"]
    assert added == {name for name in headers["properties"] if name.startswith("x-cf-dlq-")}
    assert set(headers["required"]) == {n for n, _ in DeadLetter(**{**letter.__dict__, "value_sha256": None,
                                                                    "value_size": None}).record_headers()
                                        } - {schemas.EVENT_TYPE_HEADER}
