"""Property-based: whatever bytes arrive, decode returns a valid event or raises ContractError only."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import ContractError, Envelope, Keyring, catalog, decode, encode
from schemas.examples import example_event

SEEDS = [encode(example_event(t, v)) for t, e in catalog.items() for v in e.versions]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


def _decode_or_contract_error(raw: bytes) -> Envelope | None:
    try:
        event = decode(raw)
    except ContractError as exc:
        assert exc.reason and len(str(exc)) < 1000
        assert exc.field is None or isinstance(exc.field, str)
        return None
    assert isinstance(event, Envelope)
    assert event.version == catalog[event.event_type].latest_version
    return event


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes(raw: bytes) -> None:
    _decode_or_contract_error(raw)


@settings(max_examples=300)
@given(json_values)
def test_random_json(value: Any) -> None:
    _decode_or_contract_error(json.dumps(value).encode())


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            out += _paths(child, prefix + (key,))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            out += _paths(child, prefix + (index,))
    return out


@st.composite
def mutated_records(draw: st.DrawFn) -> bytes:
    document = json.loads(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["delete", "replace", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(json_values)
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(json_values)
    return json.dumps(document).encode()


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_records())
def test_mutated_records(raw: bytes) -> None:
    event = _decode_or_contract_error(raw)
    if event is not None:  # whatever survives must re-encode and decode to itself
        assert decode(encode(event)) == event


@settings(max_examples=300)
@given(st.sampled_from(SEEDS), st.integers(min_value=0), st.binary(min_size=1, max_size=3))
def test_byte_level_corruption(seed: bytes, position: int, junk: bytes) -> None:
    index = position % len(seed)
    _decode_or_contract_error(seed[:index] + junk + seed[index + 1 :])


@settings(max_examples=200)
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.text(max_size=20), st.none() | st.binary(max_size=80)), max_size=5),
)
def test_verify_never_raises_on_arbitrary_headers(value: bytes, headers: list) -> None:
    ring = Keyring.parse("order/k1:secret").as_signer("order")
    check = ring.verify(value, headers)
    assert check.status.value in {"missing", "unknown_key", "mismatch"}
    assert ring.verify(value, headers + ring.sign(value)).status.value in {"ok", "mismatch"}
