"""encode/decode: round trips for every type and version, determinism, and typed errors naming fields."""

from __future__ import annotations

import json

import pytest

import schemas
from schemas import ContractError, UnknownEventTypeError, UnsupportedVersionError, catalog, decode, encode
from schemas.examples import example_event

ALL_VERSIONS = [(t, v) for t, e in catalog.items() for v in e.versions]
LATEST = [(t, e.latest_version) for t, e in catalog.items()]


@pytest.mark.parametrize(("event_type", "version"), LATEST)
def test_round_trip_latest(event_type: str, version: str) -> None:
    event = example_event(event_type, version)
    raw = encode(event)
    back = decode(raw)
    assert back == event
    assert type(back) is catalog[event_type].envelope_model(version)
    assert encode(back) == raw


@pytest.mark.parametrize(("event_type", "version"), ALL_VERSIONS)
def test_every_version_decodes_to_latest(event_type: str, version: str) -> None:
    entry = catalog[event_type]
    raw = encode(example_event(event_type, version))
    as_written = decode(raw, upcast=False)
    assert as_written.version == version
    latest = decode(raw)
    assert latest.version == entry.latest_version
    assert isinstance(latest.data, entry.latest_payload)
    assert (latest.event_id, latest.correlation_id, latest.occurred_at) == (
        as_written.event_id,
        as_written.correlation_id,
        as_written.occurred_at,
    )


def test_encoding_is_compact_and_deterministic() -> None:
    event = example_event("order.created")
    raw = encode(event)
    assert raw == encode(event) == encode(decode(raw))
    assert b" " not in raw.replace(b"Standard VM", b"")  # no separators whitespace
    assert raw == json.dumps(json.loads(raw), separators=(",", ":"), ensure_ascii=False).encode()


def test_decode_accepts_other_whitespace_and_key_order() -> None:
    raw = encode(example_event("billing.invoice-created"))
    document = json.loads(raw)
    shuffled = json.dumps(dict(reversed(list(document.items()))), indent=4).encode()
    assert decode(shuffled) == decode(raw)


def test_decode_accepts_bytes_like_inputs() -> None:
    raw = encode(example_event("support.ticket-closed"))
    assert decode(bytearray(raw)) == decode(memoryview(raw)) == decode(raw.decode()) == decode(raw)


def _mutate(event_type: str, path: list[str | int], value: object, *, delete: bool = False) -> bytes:
    document = json.loads(encode(example_event(event_type)))
    target = document
    for part in path[:-1]:
        target = target[part]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("raw", "field", "error_type"),
    [
        (b"", None, ContractError),
        (b"{not json", None, ContractError),
        (b"\xff\xfe\x00", None, ContractError),
        (b"[1, 2]", None, ContractError),
        (b"42", None, ContractError),
        (b"{}", "eventType", ContractError),
        (_mutate("order.created", ["eventType"], "order.shipped"), "eventType", UnknownEventTypeError),
        (_mutate("order.created", ["eventType"], 7), "eventType", UnknownEventTypeError),
        (_mutate("order.created", ["version"], "v4"), "version", UnsupportedVersionError),
        (_mutate("order.fulfilled", ["version"], "v2"), "version", UnsupportedVersionError),
        (_mutate("order.created", ["version"], None, delete=True), "version", ContractError),
        (_mutate("order.created", ["eventId"], "not-a-uuid"), "eventId", ContractError),
        (
            _mutate("order.created", ["eventId"], "6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
            "eventId",
            ContractError,
        ),
        (_mutate("order.created", ["tenantId"], None, delete=True), "tenantId", ContractError),
        (_mutate("order.created", ["actor", "type"], "robot"), "actor.type", ContractError),
        (_mutate("order.created", ["actor", "id"], ""), "actor.id", ContractError),
        (_mutate("order.created", ["occurredAt"], "2025-07-01T12:00:00"), "occurredAt", ContractError),
        (_mutate("order.created", ["occurredAt"], "yesterday"), "occurredAt", ContractError),
        (_mutate("order.created", ["causationId"], 12), "causationId", ContractError),
        (
            _mutate("order.created", ["data", "total", "amountMinor"], "9996"),
            "data.total.amountMinor",
            ContractError,
        ),
        (
            _mutate("order.created", ["data", "total", "amountMinor"], 99.5),
            "data.total.amountMinor",
            ContractError,
        ),
        (
            _mutate("order.created", ["data", "total", "amountMinor"], -1),
            "data.total.amountMinor",
            ContractError,
        ),
        (
            _mutate("order.created", ["data", "lines", 0, "quantity"], 0),
            "data.lines.0.quantity",
            ContractError,
        ),
        (_mutate("order.created", ["data", "region"], None, delete=True), "data.region", ContractError),
        (_mutate("order.created", ["data", "surprise"], 1), "data.surprise", ContractError),
        (_mutate("order.created", ["extra"], 1), "extra", ContractError),
        (_mutate("order.created", ["data"], "{}"), "data", ContractError),
        (
            _mutate("support.ticket-closed", ["data", "satisfactionScore"], 6),
            "data.satisfactionScore",
            ContractError,
        ),
    ],
)
def test_bad_input_raises_typed_error_naming_the_field(
    raw: bytes, field: str | None, error_type: type[ContractError]
) -> None:
    with pytest.raises(ContractError) as info:
        decode(raw)
    assert type(info.value) is error_type
    assert info.value.field == field, info.value.reason
    assert info.value.reason
    assert isinstance(info.value, ValueError)
    assert info.value.category == "validation"


def test_snake_case_keys_are_not_accepted_on_the_wire() -> None:
    raw = encode(example_event("order.created")).replace(b'"customerId"', b'"customer_id"')
    with pytest.raises(ContractError) as info:
        decode(raw)
    assert info.value.field == "data.customerId"


def test_non_bytes_input_is_a_contract_error() -> None:
    for value in (None, 12, 3.5, ["x"], object()):
        with pytest.raises(ContractError):
            decode(value)  # type: ignore[arg-type]


def test_error_reason_is_bounded_for_huge_inputs() -> None:
    raw = _mutate("order.created", ["eventType"], "x" * 100_000)
    with pytest.raises(UnknownEventTypeError) as info:
        decode(raw)
    assert len(str(info.value)) < 400


def test_contract_errors_pickle() -> None:
    import pickle

    error = UnsupportedVersionError("too new", field="version")
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is UnsupportedVersionError and clone.field == "version" and clone.reason == "too new"


def test_encode_rejects_non_envelopes() -> None:
    with pytest.raises(ContractError):
        encode({"eventType": "order.created"})  # type: ignore[arg-type]


def test_upcast_of_decoded_latest_is_identity() -> None:
    event = decode(encode(example_event("order.created")))
    assert schemas.upcast(event) is event
