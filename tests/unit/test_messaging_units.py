"""Pure parts of the messaging runtime: backoff formula, error classes, DLQ decisions and record
format, spool files, handler specs, idempotency keys and the JSON log line."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import exc as sa

import schemas
from core.logs import JsonFormatter, log_context
from messaging.dlq.letter import DLQ_RETRIES, DeadLetter, strip_dlq_headers
from messaging.dlq.outcomes import Outcome, decide
from messaging.errors import (
    ErrorClass,
    InconsistencyError,
    NotFoundError,
    PermissionDeniedError,
    PublishError,
    ResourceBusyError,
    TransientError,
    ValidationError,
    classify,
)
from messaging.fallback.spool import FallbackSpool, SpooledRecord
from messaging.handlers import HandlerSpec, specs_of
from messaging.idempotency import idempotency_key
from messaging.retry import PROFILES, RetryPolicy, policy_for


@pytest.mark.parametrize(("profile", "retries", "delays"), [
    (schemas.RetryProfile.CRITICAL, 5, [0.5, 1, 2, 4, 8]),
    (schemas.RetryProfile.DEFAULT, 3, [1, 2, 4]),
    (schemas.RetryProfile.NON_CRITICAL, 2, [2, 4]),
])
def test_profiles_follow_the_formula(profile: schemas.RetryProfile, retries: int,
                                     delays: list[float]) -> None:
    policy = PROFILES[profile]
    assert policy.retries == retries
    assert [policy.delay(n) for n in range(1, retries + 1)] == delays
    assert policy.allows(retries) and not policy.allows(retries + 1)


def test_delay_is_capped_and_one_based() -> None:
    assert PROFILES[schemas.RetryProfile.CRITICAL].delay(20) == 60
    assert PROFILES[schemas.RetryProfile.DEFAULT].delay(10) == 30
    assert RetryPolicy(3, 0.1, 100, multiplier=3).delay(3) == pytest.approx(0.9)
    with pytest.raises(ValueError):
        PROFILES[schemas.RetryProfile.DEFAULT].delay(0)


def test_profile_comes_from_the_catalog() -> None:
    assert policy_for("billing.payment-captured") is PROFILES[schemas.RetryProfile.CRITICAL]
    assert policy_for("order.created") is PROFILES[schemas.RetryProfile.DEFAULT]
    assert policy_for("notification.failed") is PROFILES[schemas.RetryProfile.NON_CRITICAL]
    assert policy_for("no.such-type") is PROFILES[schemas.RetryProfile.DEFAULT]
    assert policy_for(None) is PROFILES[schemas.RetryProfile.DEFAULT]


@pytest.mark.parametrize(("exc", "expected"), [
    (TransientError("x"), ErrorClass.TRANSIENT),
    (ResourceBusyError("x"), ErrorClass.RESOURCE_BUSY),
    (ValidationError("x"), ErrorClass.VALIDATION),
    (NotFoundError("x"), ErrorClass.NOT_FOUND),
    (PermissionDeniedError("x"), ErrorClass.PERMISSION),
    (InconsistencyError("x"), ErrorClass.INCONSISTENCY),
    (schemas.SignatureError("bad"), ErrorClass.PERMISSION),
    (schemas.ContractError("bad"), ErrorClass.VALIDATION),
    (TimeoutError(), ErrorClass.TRANSIENT),
    (ConnectionRefusedError(), ErrorClass.TRANSIENT),
    (psycopg.OperationalError("server closed"), ErrorClass.TRANSIENT),
    (sa.OperationalError("s", {}, psycopg.errors.LockNotAvailable("locked")), ErrorClass.RESOURCE_BUSY),
    (sa.IntegrityError("s", {}, Exception("dup")), ErrorClass.INCONSISTENCY),
    (PublishError("gone", retriable=True), ErrorClass.TRANSIENT),
    (PermissionError(), ErrorClass.PERMISSION),
    (KeyError("k"), ErrorClass.NOT_FOUND),
    (ValueError("v"), ErrorClass.VALIDATION),
    (RuntimeError("unknown"), ErrorClass.TRANSIENT),  # unknown: retried, then DLQ
])
def test_classify(exc: BaseException, expected: ErrorClass) -> None:
    assert classify(exc) is expected
    assert expected.retryable == (expected in (ErrorClass.TRANSIENT, ErrorClass.RESOURCE_BUSY))


def _letter(error_class: ErrorClass, dlq_retries: int = 0) -> DeadLetter:
    return DeadLetter("cloud-factory.dev.order.created.v1", 2, 41, b"key", b"value",
                      [("x-cf-event-type", b"order.created"), ("x-cf-event-id", b"e-1"), (DLQ_RETRIES, b"1")],
                      error_class, "why", exception="TimeoutError", attempts=4, handler="h", group="g",
                      dlq_retries=dlq_retries)


def test_dead_letter_round_trips_through_headers() -> None:
    letter = _letter(ErrorClass.TRANSIENT, 2)
    letter.headers = strip_dlq_headers(letter.headers)
    back = DeadLetter.from_record(letter.key, letter.value, letter.record_headers())
    assert back == letter
    assert back.topic == "cloud-factory.dev.order.created.v1.dlq"
    assert (back.event_id, back.event_type) == ("e-1", "order.created")
    assert dict(letter.record_headers())["x-cf-dlq-original"] == b"cloud-factory.dev.order.created.v1/2/41"


def test_foreign_dlq_record_is_still_readable() -> None:
    letter = DeadLetter.from_record(None, b"?", [("x-cf-dlq-error-class", b"nonsense")])
    assert (letter.error_class is ErrorClass.VALIDATION and letter.attempts == 1
            and letter.original_offset == -1)


@pytest.mark.parametrize(("error_class", "retries", "outcome"), [
    (ErrorClass.VALIDATION, 0, Outcome.DISCARDED),
    (ErrorClass.TRANSIENT, 0, Outcome.RETRIED),
    (ErrorClass.RESOURCE_BUSY, 2, Outcome.RETRIED),
    (ErrorClass.TRANSIENT, 3, Outcome.MANUAL_REVIEW),
    (ErrorClass.NOT_FOUND, 0, Outcome.MANUAL_REVIEW),
    (ErrorClass.PERMISSION, 0, Outcome.MANUAL_REVIEW),
    (ErrorClass.INCONSISTENCY, 0, Outcome.MANUAL_REVIEW),
])
def test_dlq_decisions(error_class: ErrorClass, retries: int, outcome: Outcome) -> None:
    decision = decide(_letter(error_class, retries), max_dlq_retries=3)
    assert decision.outcome is outcome
    if outcome is Outcome.RETRIED:
        assert decision.delay == PROFILES[schemas.RetryProfile.DEFAULT].delay(retries + 1)


def _record(n: int) -> SpooledRecord:
    return SpooledRecord("topic", f"k{n}".encode(), f"v{n}".encode(),
                         [("h", b"\x00\xff"), ("traceparent", b"00-x")])


class _FrozenClock:
    """Stands in for the `datetime` module inside `messaging.fallback.spool`: its `datetime.now` returns
    a fixed instant (one millisecond before a UTC midnight), so the file name never depends on the wall
    clock."""

    UTC = dt.UTC

    class datetime(dt.datetime):  # noqa: N801 - mirrors the module attribute it replaces
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:
            return dt.datetime(2026, 3, 14, 23, 59, 59, 999000, tzinfo=dt.UTC).astimezone(tz)


def test_spool_appends_replays_in_order_and_deletes_done_files(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import messaging.fallback.spool

    monkeypatch.setattr(messaging.fallback.spool, "dt", _FrozenClock)
    spool = FallbackSpool(tmp_path)
    assert not spool.has_pending() and spool.next_batch() is None
    path = spool.append([_record(0), _record(1)])
    spool.append([_record(2)])
    assert path.name == "2026-03-14.jsonl" and spool.has_pending()  # the UTC date of the spooling moment
    assert [p.name for p in tmp_path.glob("*.jsonl")] == ["2026-03-14.jsonl"]
    assert spool.status().pending_records == 3
    batch = spool.next_batch(max_records=2)
    assert [SpooledRecord.from_line(line) for _, line in batch.lines] == [_record(0), _record(1)]
    spool.advance(batch, batch.lines[0][0])  # only the first was acknowledged
    again = spool.next_batch()
    assert [SpooledRecord.from_line(line) for _, line in again.lines] == [_record(1), _record(2)]
    assert FallbackSpool(tmp_path).status().pending_records == 2  # the cursor survives a restart
    spool.advance(again, again.end)
    assert not path.exists() and not spool.has_pending() and spool.next_batch() is None


def test_spool_line_format_is_stable() -> None:
    """A line as earlier releases wrote it (standard base64 fields) still reads back, and a record
    written now is byte-for-byte that format (apart from its spooledAt)."""
    line = (b'{"topic":"topic","key":"azA=","value":"djA=","headers":[["h","AP8="],'
            b'["traceparent","MDAteA=="]],'
            b'"spooledAt":"2026-01-01T00:00:00.000+00:00"}\n')
    assert SpooledRecord.from_line(line) == _record(0)
    written = json.loads(_record(0).to_line())
    assert {k: v for k, v in written.items() if k != "spooledAt"} == {
        k: v for k, v in json.loads(line).items() if k != "spooledAt"}
    with pytest.raises(ValueError):
        SpooledRecord.from_line(line.replace(b'"djA="', b'"d"'))  # not base64: a clear error, not garbage


def test_spool_quarantines_bad_lines_and_ignores_a_torn_tail(tmp_path: Path) -> None:
    spool = FallbackSpool(tmp_path)
    path = spool.append([_record(0)])
    with open(path, "ab") as handle:
        handle.write(b'{"half": ')  # a crash mid-write
    batch = spool.next_batch()
    assert len(batch.lines) == 1
    spool.quarantine(batch, batch.lines[0][1], "refused")
    status = spool.status()
    assert (status.failed_records == 1
            and json.loads(status.failed_files[0].read_text())["reason"] == "refused")
    with pytest.raises((ValueError, KeyError)):
        SpooledRecord.from_line(b'{"topic": "t"}\n')


def test_handler_specs_default_name_and_reject_duplicates() -> None:
    def a(e, c):  # noqa: ANN001, ANN202
        return None

    [spec] = specs_of(a, "group-1")
    assert spec == HandlerSpec(a, "group-1", False)
    specs = specs_of([a, HandlerSpec(a, "audit", transactional=True)], "group-1")
    assert [(s.name, s.transactional) for s in specs] == [("group-1", False), ("audit", True)]
    assert specs_of(None, "g") == []
    with pytest.raises(ValueError, match="distinct names"):
        specs_of([a, a], "g")


def test_idempotency_key_is_sha256_of_the_three_parts() -> None:
    event_id, correlation_id = uuid.uuid4(), uuid.uuid4()
    expected = hashlib.sha256(f"{event_id}{correlation_id}billing".encode()).hexdigest()
    assert idempotency_key(event_id, correlation_id, "billing") == expected
    assert idempotency_key(event_id, correlation_id, "other") != expected


@contextlib.contextmanager
def _json_logger(name: str) -> Iterator[tuple[logging.Logger, list[dict]]]:
    """A logger writing JSON lines; the list holds the parsed lines once the block is left."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.propagate = False
    lines: list[dict] = []
    try:
        yield logger, lines
    finally:
        logger.removeHandler(handler)
        lines += [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_log_line_carries_the_bound_ids() -> None:
    with _json_logger("tests.messaging.json") as (logger, lines):
        with log_context(correlation_id="c-1", event_id="e-1", tenant_id="t-1"):
            logger.warning("inside %s", "block")
        logger.warning("outside")
    inside, outside = lines
    assert inside["message"] == "inside block"
    assert (inside["correlationId"], inside["eventId"], inside["tenantId"]) == ("c-1", "e-1", "t-1")
    assert {"traceId", "spanId", "ts", "level"} <= inside.keys()
    assert outside["correlationId"] is None and outside["eventId"] is None


def test_the_consumers_handler_context_is_the_constructors_frozen_object() -> None:
    """`of_span` reads the span's ids only when asked; the object still equals, prints, refuses changes
    and copies (`dataclasses.replace`) like the constructor's."""
    import dataclasses

    from opentelemetry import trace

    from messaging.handlers import HandlerContext

    check = schemas.SignatureCheck(schemas.SignatureStatus.OK, "k1")
    span = trace.NonRecordingSpan(trace.SpanContext(int("a" * 32, 16), int("b" * 16, 16), False))
    fast = HandlerContext.of_span("topic", 2, 7, [("h", b"v")], check, span, "handler", 3, "key", None)
    plain = HandlerContext("topic", 2, 7, [("h", b"v")], check, "a" * 32, "b" * 16, handler="handler",
                           attempt=3, idempotency_key="key", db=None)
    assert fast == plain and plain == fast and repr(fast) == repr(plain)
    assert isinstance(fast, HandlerContext) and dataclasses.asdict(fast) == dataclasses.asdict(plain)
    assert dataclasses.replace(fast, attempt=4) == dataclasses.replace(plain, attempt=4)
    assert fast != dataclasses.replace(plain, span_id="c" * 16)
    for name in ("attempt", "trace_id", "span_id"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(fast, name, 4)
    unset = HandlerContext.of_span("topic", 2, 7, [], check, trace.INVALID_SPAN, "", 1, None, None)
    assert (unset.trace_id, unset.span_id) == (None, None)


def test_a_handler_context_pickles_and_copies_as_the_plain_one_with_the_same_ids() -> None:
    import copy
    import pickle

    from core.tracing import ids_span
    from messaging.handlers import HandlerContext

    check = schemas.SignatureCheck(schemas.SignatureStatus.OK, "k1")
    span = ids_span(b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01")  # its ids not read yet
    context = HandlerContext.of_span("topic", 2, 7, [("h", b"v")], check, span, "handler", 3, None, None)
    for twin in (pickle.loads(pickle.dumps(context)), copy.deepcopy(context), copy.copy(context)):
        assert type(twin) is HandlerContext and twin == context
        assert twin.span_id == f"{span.get_span_context().span_id:016x}"


def test_a_records_span_made_late_still_joins_the_trace_around_its_making() -> None:
    """Without a usable `traceparent` the consume span joins the span current when it was made —
    also when its ids are first read while it is itself current (as inside a handler)."""
    from opentelemetry import trace

    from core.tracing import attach_span, detach_span, ids_span

    outer = trace.NonRecordingSpan(trace.SpanContext(int("c" * 32, 16), int("d" * 16, 16), False))
    outer_token = attach_span(outer)
    try:
        record_span = ids_span(b"00-not-a-trace-parent")
    finally:
        detach_span(outer_token)
    token = attach_span(record_span)
    try:
        inside = trace.get_current_span().get_span_context()
    finally:
        detach_span(token)
    assert inside.trace_id == int("c" * 32, 16) and inside.span_id not in (0, int("d" * 16, 16))
    assert record_span.get_span_context() == inside  # made once: every reader sees the same ids


@pytest.mark.parametrize("span_key", ["found", "unknown"])
def test_a_records_span_made_current_at_once_is_what_the_two_steps_make(
        span_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`attach_ids_span` (the consumer's step per record) against `attach_span(ids_span(...))`: the
    same context around the handler — a plain `Context`, the record's span current, every other value
    of the context it was made in still there (a key of another library, the outer span's trace when
    the header is unusable) — and the context before it current again after `detach_span`; also
    when the span's key was not found at import (the two public steps then)."""
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    import core.tracing as tracing
    from core.tracing import attach_ids_span, attach_span, detach_span, ids_span

    assert tracing._SPAN_KEY is not None  # this OpenTelemetry's key was found
    if span_key == "unknown":
        monkeypatch.setattr(tracing, "_SPAN_KEY", None)
    other_key = otel_context.create_key("another-library")
    outer = trace.NonRecordingSpan(trace.SpanContext(int("c" * 32, 16), int("d" * 16, 16), False))
    outer_token = otel_context.attach(trace.set_span_in_context(outer, otel_context.set_value(other_key, 7)))
    try:
        for header in (b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01", b"00-not-a-trace-parent", None):
            before = otel_context.get_current()
            span, token = attach_ids_span(header)
            try:
                inside = otel_context.get_current()
                assert trace.get_current_span() is span and span.get_span_context().is_valid
                assert otel_context.get_value(other_key) == 7
            finally:
                detach_span(token)
            assert otel_context.get_current() is before
            twin = ids_span(header)
            twin_token = attach_span(twin)
            try:
                expected = otel_context.get_current()
            finally:
                detach_span(twin_token)
            assert type(inside) is type(expected) is otel_context.Context
            assert inside.keys() == expected.keys()
            assert {k: v for k, v in inside.items() if v is not span} == {
                k: v for k, v in expected.items() if v is not twin}
            joined = int("a" * 32, 16) if header and b"aaaa" in header else int("c" * 32, 16)
            assert span.get_span_context().trace_id == twin.get_span_context().trace_id == joined
    finally:
        otel_context.detach(outer_token)


def test_a_records_span_keeps_the_first_ids_made_when_two_readers_race(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two threads reading a fresh span's ids at once each make a span context (each its own random
    span id); the one made first must be every reader's. Simulated without threads: while the first
    read makes its ids, a second read gets in and finishes first."""
    import core.tracing as tracing

    made = iter([int("1" * 16, 16), int("2" * 16, 16)])
    real = tracing._consume_span_context
    record_span = tracing.ids_span(b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01")
    seen: list[int] = []

    def racing(traceparent: bytes, outer: object) -> object:
        span_id = next(made)
        if span_id == int("1" * 16, 16):
            seen.append(record_span.get_span_context().span_id)  # the other reader, done first
        context = real(traceparent, outer)
        return type(context)(context.trace_id, span_id, False, context.trace_flags)

    monkeypatch.setattr(tracing, "_consume_span_context", racing)
    first = record_span.get_span_context().span_id
    assert seen == [first] == [record_span.get_span_context().span_id]


def test_bind_event_ids_binds_what_log_context_binds() -> None:
    from core.logs import bind_event_ids, bound_log_fields

    with log_context(tenant_id="outer", extra="x"):
        with bind_event_ids("c-1", "e-1", None):
            inner = bound_log_fields()
        with log_context(correlation_id="c-1", event_id="e-1", tenant_id=None):
            assert bound_log_fields() == inner
        assert bound_log_fields() == {"tenantId": "outer", "extra": "x"}
    assert inner == {"tenantId": "outer", "extra": "x", "correlationId": "c-1", "eventId": "e-1"}


def test_bind_event_ids_takes_uuids_and_logs_them_as_text() -> None:
    import uuid

    from core.logs import bind_event_ids, bound_log_fields

    correlation_id, event_id = uuid.uuid4(), uuid.uuid4()
    with _json_logger("tests.messaging.uuid-ids") as (logger, lines):
        with bind_event_ids(correlation_id, event_id, "t-1"):
            assert bound_log_fields() == {"correlationId": str(correlation_id), "eventId": str(event_id),
                                          "tenantId": "t-1"}
            logger.warning("handled")
    [line] = lines
    assert ((line["correlationId"], line["eventId"], line["tenantId"])
            == (str(correlation_id), str(event_id), "t-1"))
    assert bound_log_fields() == {}


def test_a_refused_record_gets_no_key_and_no_handler() -> None:
    """`accept` (tenant sharding) runs on the verified, decoded envelope; a refused record is not
    served here at all: no handler spec, no idempotency key to claim."""
    envelope, record = _signed_record()
    seen: list[str] = []
    reader = _reader(schemas.SigningMode.PRODUCTION)
    reader.accept = lambda env: seen.append(env.tenant_id) or False
    item = reader.read(record)
    assert seen == [envelope.tenant_id]
    assert item.error is None and item.envelope is not None and item.specs == [] and item.requests == []
    reader.accept = lambda env: env.tenant_id == envelope.tenant_id
    served = reader.read(record)
    assert len(served.specs) == 1 and len(served.requests) == 1


class _Record:
    """Just enough of a confluent_kafka.Message for `RecordReader.read`."""

    def __init__(self, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self._value, self._headers = value, headers

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return list(self._headers)

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 5


def _reader(mode: schemas.SigningMode, store: object = "a store"):  # noqa: ANN202 - a reader, no broker
    from messaging.consumer.dispatch import HandlerTable
    from messaging.consumer.reading import RecordReader

    handlers = HandlerTable({"order.created": lambda envelope, context: None}, "unit")
    return RecordReader(schemas.Keyring.parse("order/k1:secret-one,order/k2:secret-two"), mode, handlers,
                        max_event_age_s=3600.0, with_keys=store is not None)


def _signed_record(extra: tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]] = (),
                   ) -> tuple[schemas.Envelope, _Record]:
    from schemas.examples import example_data

    version = schemas.catalog["order.created"].latest_version
    envelope = schemas.new_event("order.created", example_data("order.created", version), tenant_id="t",
                                 correlation_id=uuid.uuid4(), producer="order-service",
                                 actor=schemas.Actor(id="unit", type=schemas.ActorType.SYSTEM))
    value = schemas.encode(envelope)
    keyring = schemas.Keyring.parse("order/k1:secret-one").as_signer("order")
    headers = [*keyring.sign(value), ("x-cf-event-type", b"order.created"), ("ce_id", b"x"),
               ("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"), *extra]
    return envelope, _Record(value, headers)


def test_read_verifies_every_signature_header_whatever_its_case() -> None:
    """The consumer hands only possible signature headers to the keyring; a second signature or key
    id header in another case is still seen (and rejected), as `Keyring.verify` on all headers would."""
    envelope, record = _signed_record()
    item = _reader(schemas.SigningMode.PRODUCTION).read(record)
    assert item.error is None and item.check.ok
    assert item.envelope.event_id == envelope.event_id
    assert item.trace_parent == b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"  # found in the same pass
    key = idempotency_key(envelope.event_id, envelope.correlation_id, "unit")
    assert [r.key for r in item.requests] == [key]
    # no store, no keys
    assert _reader(schemas.SigningMode.PRODUCTION, store=None).read(record).requests == []
    for extra in ([("X-CF-Signature", b"sha256=" + b"0" * 64)], [("X-CF-Key-Id", b"k2")]):
        _, record = _signed_record(extra)
        keyring = schemas.Keyring.parse("order/k1:secret-one,order/k2:secret-two")
        expected = keyring.verify(record.value(), record.headers())
        assert not expected.ok
        item = _reader(schemas.SigningMode.PRODUCTION).read(record)
        assert item.check == expected
        assert isinstance(item.error, schemas.SignatureError) and item.envelope is None
        item = _reader(schemas.SigningMode.DEVELOPMENT).read(record)
        assert item.check == expected and item.error is None and item.envelope is not None


def test_read_refuses_a_record_signed_by_a_service_that_does_not_publish_its_type() -> None:
    """A valid signature is not enough: the signer must be the type's publisher and match `producer`."""
    from schemas.examples import example_data

    ring = schemas.Keyring.parse("order/k1:secret-one,notification/n1:secret-n")
    envelope = schemas.new_event("order.created", example_data("order.created", "v3"), tenant_id="t",
                                 correlation_id=uuid.uuid4(), producer="order-service",
                                 actor=schemas.Actor(id="unit", type=schemas.ActorType.SYSTEM))
    value = schemas.encode(envelope)
    for mode in schemas.SigningMode:
        consumer = _reader(mode)
        consumer.keyring = ring
        item = consumer.read(_Record(value, ring.as_signer("notification").sign(value)))
        assert item.check.ok and item.check.service is schemas.Service.NOTIFICATION
        if mode is schemas.SigningMode.PRODUCTION:
            assert isinstance(item.error, schemas.UnauthorizedSignerError)
            assert classify(item.error) is ErrorClass.PERMISSION
            assert "signed by notification (key n1)" in str(item.error)
        else:
            assert item.error is None and item.envelope is not None
    lying = envelope.model_copy(update={"producer": "billing-service"})
    value = schemas.encode(lying)
    consumer = _reader(schemas.SigningMode.PRODUCTION)
    consumer.keyring = ring
    item = consumer.read(_Record(value, ring.as_signer("order").sign(value)))
    assert isinstance(item.error, schemas.UnauthorizedSignerError) and item.error.field == "producer"


def test_read_refuses_a_record_signed_outside_the_age_window() -> None:
    import time as clock

    from messaging.errors import InconsistencyError

    envelope, record = _signed_record()
    ring = schemas.Keyring.parse("order/k1:secret-one").as_signer("order")
    old = ring.sign(record.value(), signed_at_ms=int((clock.time() - 7200) * 1000))
    item = _reader(schemas.SigningMode.PRODUCTION).read(_Record(record.value(), old))
    assert isinstance(item.error, InconsistencyError) and classify(item.error) is ErrorClass.INCONSISTENCY
    assert "outside the 1.0 h window" in str(item.error) and "signed 2.0 h ago" in str(item.error)
    fresh = _reader(schemas.SigningMode.PRODUCTION).read(record)
    assert fresh.error is None


def test_a_scoped_consumer_leaves_an_untrusted_record_of_another_tenant_to_that_tenants_shard() -> None:
    _, record = _signed_record([("X-CF-Key-Id", b"k2")])  # two key ids: the signature is rejected
    mine = _reader(schemas.SigningMode.PRODUCTION)
    mine.accept = lambda envelope: envelope.tenant_id == "t"
    assert isinstance(mine.read(record).error, schemas.SignatureError)  # its tenant "t" is ours
    other = _reader(schemas.SigningMode.PRODUCTION)
    other.accept = lambda envelope: envelope.tenant_id == "someone-else"
    item = other.read(record)
    assert item.error is None and item.specs == [] and item.requests == []
    garbage = _Record(b"not json", record.headers())
    assert isinstance(other.read(garbage).error, schemas.ContractError)  # undecodable: still ours


def test_junk_in_a_signature_header_is_a_rejected_record_never_a_stalled_batch() -> None:
    envelope, record = _signed_record()
    junk = [(k, b"sha256=\xff" if k == "x-cf-signature" else v) for k, v in record.headers()]
    item = _reader(schemas.SigningMode.PRODUCTION).read(_Record(record.value(), junk))
    assert isinstance(item.error, schemas.SignatureError) and item.check.status.value == "mismatch"


def test_a_signed_time_far_in_the_future_is_refused() -> None:
    import time as clock

    from messaging.consumer.freshness import stale_reason

    envelope, record = _signed_record()
    ring = schemas.Keyring.parse("order/k1:secret-one")
    ahead = ring.as_signer("order").sign(record.value(), signed_at_ms=int((clock.time() + 3 * 86400) * 1000))
    check = ring.verify(record.value(), ahead)
    assert check.ok
    assert "in the future" in stale_reason(envelope, check, 3600.0)
    soon = ring.as_signer("order").sign(record.value(), signed_at_ms=int((clock.time() + 60) * 1000))
    assert stale_reason(envelope, ring.verify(record.value(), soon), 3600.0) is None  # within the skew


@pytest.mark.parametrize("fails", [False, True])
def test_ids_only_dispatch_continues_the_records_trace_and_leaves_nothing_bound(fails: bool) -> None:
    """With nothing recording, the handler runs in a fresh span of the record's trace, with the
    record's ids on its log lines; afterwards — also after a failure — neither stays current."""
    from opentelemetry import trace

    from core.logs import bound_log_fields
    from core.tracing import recording
    from messaging.consumer.claims import BatchClaims
    from messaging.consumer.dispatch import Dispatcher, HandlerFailed, HandlerTable
    from messaging.consumer.reading import RecordReader

    assert not recording()
    envelope, record = _signed_record()
    seen: list[tuple[object, object, dict[str, str]]] = []

    def handler(env: schemas.Envelope, context: object) -> None:
        seen.append((context, trace.get_current_span().get_span_context(), bound_log_fields()))
        if fails:
            raise RuntimeError("refused")

    table = HandlerTable({"order.created": handler}, "unit")
    reader = RecordReader(schemas.Keyring.parse("order/k1:secret-one"), schemas.SigningMode.PRODUCTION, table,
                          max_event_age_s=3600.0, with_keys=False)
    item = reader.read(record)  # type: ignore[arg-type]
    before = trace.get_current_span().get_span_context()
    if fails:
        with pytest.raises(HandlerFailed, match="refused"):
            Dispatcher(None, "unit").handle(item, BatchClaims(None), attempt=1)
    else:
        Dispatcher(None, "unit").handle(item, BatchClaims(None), attempt=1)
    [(context, current, fields)] = seen
    assert context.trace_id == "1" * 32 and context.span_id not in (None, "2" * 16)  # type: ignore[attr-defined]
    assert (f"{current.trace_id:032x}", f"{current.span_id:016x}") == (
        context.trace_id, context.span_id)  # type: ignore[attr-defined]
    assert fields == {"correlationId": str(envelope.correlation_id), "eventId": str(envelope.event_id),
                      "tenantId": "t"}
    assert trace.get_current_span().get_span_context() == before and bound_log_fields() == {}


def test_ids_only_dispatch_calls_each_handler_in_order_until_one_fails() -> None:
    """The ids-only path with several handlers of one type: each is called in order with its own name
    in its context (the consumer's name for an unnamed one), in the context the consumer ran in
    (another library's key still there); the first failure stops the rest and names its handler."""
    from opentelemetry import context as otel_context

    from core.tracing import recording
    from messaging.consumer.claims import BatchClaims
    from messaging.consumer.dispatch import Dispatcher, HandlerFailed, HandlerTable
    from messaging.consumer.reading import RecordReader
    from messaging.handlers import HandlerSpec

    assert not recording()
    _, record = _signed_record()
    other_key = otel_context.create_key("another-library")
    calls: list[tuple[str, str, object]] = []

    def handler(label: str, fails: bool = False):  # noqa: ANN202 - a handler per label
        def handle(env: schemas.Envelope, context: object) -> None:
            calls.append((label, context.handler, otel_context.get_value(other_key)))  # type: ignore[attr-defined]
            if fails:
                raise RuntimeError(f"{label} refused")
        return handle

    specs = [HandlerSpec(handler("first"), name="first"), HandlerSpec(handler("second", fails=True)),
             HandlerSpec(handler("third"), name="third")]
    table = HandlerTable({"order.created": specs}, "unit")
    reader = RecordReader(schemas.Keyring.parse("order/k1:secret-one"), schemas.SigningMode.PRODUCTION, table,
                          max_event_age_s=3600.0, with_keys=False)
    item = reader.read(record)  # type: ignore[arg-type]
    token = otel_context.attach(otel_context.set_value(other_key, "kept"))
    try:
        with pytest.raises(HandlerFailed, match="second refused") as failed:
            Dispatcher(None, "unit").handle(item, BatchClaims(None), attempt=1)
    finally:
        otel_context.detach(token)
    assert calls == [("first", "first", "kept"), ("second", "unit", "kept")]
    assert failed.value.handler == "unit" and isinstance(failed.value.cause, RuntimeError)


@pytest.mark.parametrize("header", [
    None, b"", b"00-" + b"0" * 32 + b"-" + b"2" * 16 + b"-01",  # absent, empty, all-zero trace id
    b"00--" + b"1" * 31 + b"-" + b"2" * 16 + b"-01",  # a sign: `int` would read a negative id
    b"00-+" + b"1" * 31 + b"-" + b"2" * 16 + b"-01",  # `int` takes a plus sign,
    b"00-" + b"1" * 16 + b"_" + b"1" * 15 + b"-" + b"2" * 16 + b"-01",  # an underscore
    b"00- " + b"1" * 31 + b"-" + b"2" * 16 + b"-01",  # and spaces: not hex digits
    b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-0g",  # flags not hex
    b"00-" + b"A" * 32 + b"-" + b"2" * 16 + b"-01",  # uppercase: W3C and OpenTelemetry's propagator refuse it
    b"00-" + b"1" * 32 + b"-" + b"2" * 16,  # too short
    b"01-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01",  # another version
])
def test_an_unusable_traceparent_starts_a_new_trace(header: bytes | None) -> None:
    from core.tracing import ids_span, parse_traceparent

    span_context = ids_span(header).get_span_context()
    assert span_context.is_valid and f"{span_context.trace_id:032x}" != "1" * 32
    assert parse_traceparent(header) is None


def test_a_traceparent_as_text_or_bytes_is_continued_alike() -> None:
    from core.tracing import ids_span

    value = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    for header in (value, value.encode()):
        span_context = ids_span(header).get_span_context()
        assert (span_context.trace_id, span_context.trace_flags) == (int("a" * 32, 16), 1)
        assert span_context.span_id != int("b" * 16, 16)


def test_reading_never_raises_a_failing_accept_marks_the_record() -> None:
    """The consumer reads a record while it handles the batch: a raise there would fail records
    already handled, so whatever goes wrong is the record's own error."""
    from messaging.consumer.dispatch import HandlerTable
    from messaging.consumer.reading import RecordReader

    def accept(envelope: schemas.Envelope) -> bool:
        raise RuntimeError("tenant directory away")

    _, record = _signed_record()
    reader = RecordReader(schemas.Keyring.parse("order/k1:secret-one"), schemas.SigningMode.PRODUCTION,
                          HandlerTable({"order.created": lambda envelope, context: None}, "unit"),
                          accept=accept, max_event_age_s=3600.0, with_keys=False)
    item = reader.read(record)  # type: ignore[arg-type]
    assert isinstance(item.error, RuntimeError) and item.served
