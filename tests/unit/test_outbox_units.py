"""The outbox's pure parts: records are signed like the producer's, keep their writer's trace context
(`tracestate` too) beside the headers, headers survive JSON, the CLI's messages, and which
acknowledged rows a relay may mark published (only an in-order prefix)."""

from __future__ import annotations

import uuid

import pytest
from opentelemetry import trace

import schemas
from core.tracing import child_traceparent, scope
from messaging.outbox import OutboxRelay, decode_headers, encode_headers, record_for, writer_span
from messaging.outbox.delivery import DeliveryReport, broker_reachable, explain
from services.common.emitter import service_event_id

KEYRING = schemas.Keyring.parse("identity/k1:secret-one").as_signer("identity")


def _envelope() -> schemas.Envelope:
    user = uuid.uuid4()
    return schemas.new_event(
        "identity.email-verified",
        {"userId": user, "email": "ada@example.com"},
        tenant_id="acme",
        correlation_id=uuid.uuid4(),
        actor=schemas.Actor(id=str(user), type=schemas.ActorType.USER),
        producer="identity-service",
        event_id=service_event_id("identity", f"user/{user}/email-verified"),
    )


def test_record_is_the_producers_record_signed_and_keyed_by_correlation() -> None:
    envelope = _envelope()
    record = record_for(envelope, KEYRING, env="dev")
    assert record.topic == "cloud-factory.dev.identity.email-verified.v1"
    assert record.key == str(envelope.correlation_id).encode()
    assert record.event_id == envelope.event_id
    headers = dict(record.headers)
    assert headers["x-cf-event-id"] == str(envelope.event_id).encode()
    assert schemas.decode(record.value).event_id == envelope.event_id
    tampered = dict(record_for(envelope, schemas.Keyring.parse("identity/k1:other").as_signer("identity"),
                               env="dev").headers)
    assert tampered["x-cf-signature"] != headers["x-cf-signature"]


def test_record_keeps_the_writers_trace_context_beside_its_headers() -> None:
    state = trace.TraceState([("vendor", "abc")])
    writer = trace.SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=trace.TraceFlags(1),
                               trace_state=state)
    with scope("command", parent=writer) as span:
        record = record_for(_envelope(), KEYRING, env="dev")
    ids = span.get_span_context()
    assert record.trace_context == {"traceparent": f"00-{0x1234:032x}-{ids.span_id:016x}-01",
                                    "tracestate": "vendor=abc"}
    assert not {"traceparent", "tracestate"} & {name for name, _ in record.headers}  # the relay adds its own
    parent = writer_span(record.trace_context)
    assert parent is not None and (parent.trace_id, parent.span_id) == (0x1234, ids.span_id)
    relayed = dict(child_traceparent(parent))  # what the relay's publish span sends (ids only)
    assert relayed["tracestate"] == b"vendor=abc"
    assert relayed["traceparent"].startswith(f"00-{0x1234:032x}-".encode())
    assert writer_span(None) is None and writer_span({"traceparent": "garbage"}) is None


def test_outside_any_span_a_record_has_no_trace_context() -> None:
    assert record_for(_envelope(), KEYRING, env="dev").trace_context is None


def test_headers_round_trip_through_json() -> None:
    headers = [("a", b"\x00\xffbin"), ("traceparent", b"00-abc-def-01"), ("a", b"")]
    assert decode_headers(encode_headers(headers)) == headers


def test_only_the_acknowledged_prefix_is_marked_published() -> None:
    rows = [{"id": i} for i in (4, 5, 6, 7)]
    assert OutboxRelay._prefix(rows, {4, 5, 6, 7}) == 4
    assert OutboxRelay._prefix(rows, {4, 5, 7}) == 2  # 7 waits behind 6, sent again (same eventId)
    assert OutboxRelay._prefix(rows, {5, 6, 7}) == 0


def test_cli_messages_say_the_event_is_queued() -> None:
    assert explain(DeliveryReport(0, 1), "identity", wait=False) is None
    queued = explain(DeliveryReport(1, 1), "identity", wait=False)
    assert queued is not None and "queued in the identity outbox" in queued
    assert "worker identity" in queued
    gave_up = explain(DeliveryReport(2, 2), "support", wait=True)
    assert gave_up is not None and "gave up waiting" in gave_up and "2 event(s)" in gave_up


def test_a_closed_port_is_not_a_broker() -> None:
    assert broker_reachable("127.0.0.1:1", timeout_s=0.5) is False
    assert broker_reachable("not-a-port", timeout_s=0.5) is False


def test_outbox_retention_is_a_positive_number_of_hours(monkeypatch) -> None:
    from pydantic import ValidationError

    from core.settings import Settings

    monkeypatch.delenv("CF_OUTBOX_RETENTION_H", raising=False)
    assert Settings().outbox_retention_h == 168
    monkeypatch.setenv("CF_OUTBOX_RETENTION_H", "24")
    assert Settings().outbox_retention_h == 24
    monkeypatch.setenv("CF_OUTBOX_RETENTION_H", "0")
    with pytest.raises(ValidationError):
        Settings()


def test_only_services_with_an_outbox_are_named() -> None:
    from services.common.outbox_services import OUTBOX_SERVICES, service_tables

    assert service_tables("notification").outbox.fullname == "notification.outbox"
    assert all(service_tables(name).outbox.name == "outbox" for name in OUTBOX_SERVICES)
    with pytest.raises(ValueError, match="'billing' has no outbox; services with one: identity"):
        service_tables("billing")
