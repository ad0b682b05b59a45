"""Tampered records: the DLQ in production mode, processed with a warning in development mode."""

from __future__ import annotations

import logging

import pytest

import schemas
from core.settings import Settings
from messaging.dlq.letter import DeadLetter
from messaging.wiring import consumer_from, producer_from
from tests.support.messaging_support import (
    ensure,
    event,
    isolated,
    read_all_now,
    read_topic,
    running,
    wait_until,
)

pytestmark = pytest.mark.stack


def _publish_tampered(s: Settings) -> schemas.Envelope:
    producer = producer_from(s, service="order", fallback=False)
    envelope = event()
    value = schemas.encode(envelope)
    headers = producer.keyring.sign(value) + [("x-cf-event-type", b"order.created")]
    tampered = value.replace(b'"tenantId":"tenant-msg"', b'"tenantId":"tenant-evil"')
    assert tampered != value
    producer.publish_raw(schemas.topic_for("order.created", env=s.env),
                         key=str(envelope.correlation_id).encode(), value=tampered, headers=headers)
    return envelope


@pytest.mark.parametrize("mode", ["production", "development"])
def test_tampered_value(stack, settings: Settings, unique: str, mode: str,
                        caplog: pytest.LogCaptureFixture) -> None:
    s = isolated(settings, unique, signing_mode=mode)
    ensure(s, "order.created")
    envelope = _publish_tampered(s)
    # the follower has the tampered record's key: same partition, after it, so once the follower was
    # handled the tampered record was handled (or dead-lettered) too
    follower = event(correlation_id=envelope.correlation_id)
    producer_from(s, service="order", fallback=False).publish(follower)
    handled: list[str] = []
    consumer = consumer_from(s, group_id=f"sig-{unique}", handlers={
        "order.created": lambda e, c: handled.append(
            f"{e.event_id}:{e.tenant_id}:{c.signature.status.value}")})
    with caplog.at_level(logging.WARNING), running(consumer):
        wait_until(lambda: any(h.startswith(str(follower.event_id)) for h in handled), timeout=60,
                   what="the follower published after the tampered record (same key) to be handled")
    dlq = schemas.dlq_topic_for("order.created", env=s.env)
    letters = read_all_now(s, dlq)  # the DLQ topic exists (else AssertionError) and is read to its end
    if mode == "production":
        [record] = letters
        letter = DeadLetter.from_record(record.key(), record.value(), record.headers())
        assert letter.error_class.value == "permission" and "signature" in letter.reason
        assert b'"tenantId":"tenant-evil"' in letter.value and str(envelope.event_id).encode() in letter.value
        assert handled == [f"{follower.event_id}:tenant-msg:ok"]  # the tampered record never reached it
    else:
        assert letters == [], "development mode dead-lettered the tampered record"
        assert handled == [f"{envelope.event_id}:tenant-evil:mismatch", f"{follower.event_id}:tenant-msg:ok"]
        assert any("unverified record" in r.getMessage() for r in caplog.records)


def test_garbage_is_dead_lettered_never_dropped(stack, settings: Settings, unique: str) -> None:
    """Bytes that are not an event at all (and an unknown event type) land in the DLQ as validation."""
    s = isolated(settings, unique)
    ensure(s, "order.created")
    producer = producer_from(s, service="order", fallback=False)
    topic = schemas.topic_for("order.created", env=s.env)
    for value in (b"\x00\xffnot json", b'{"eventType":"order.teleported","version":"v1"}'):
        producer.publish_raw(topic, key=b"k", value=value, headers=producer.keyring.sign(value))
    consumer = consumer_from(s, group_id=f"garbage-{unique}", handlers={"order.created": lambda e, c: None})
    with running(consumer):
        records = read_topic(s, schemas.dlq_topic_for("order.created", env=s.env), expect=2)
    letters = sorted((DeadLetter.from_record(r.key(), r.value(), r.headers()) for r in records),
                     key=lambda letter: letter.original_offset)
    assert [letter.error_class.value for letter in letters] == ["validation", "validation"]
    assert letters[0].value == b"\x00\xffnot json"
    assert "order.teleported" in letters[1].reason


def test_a_record_signed_long_ago_is_refused_until_an_operator_redrives_it(stack, settings: Settings,
                                                                           unique: str) -> None:
    """A captured record sent again a week and a day later (its idempotency key long gone) is refused as
    an Inconsistency whatever its valid signature; `dlq redrive` re-signs it, and then it is handled."""
    import time

    from core.db import engine_for
    from messaging.dlq.admin import read_entry, redrive
    from messaging.dlq.store import DlqPosition, DlqStore
    from messaging.wiring import keyring_from

    s = isolated(settings, unique)
    ensure(s, "order.created")
    topic = schemas.topic_for("order.created", env=s.env)
    old, follower = event(), event()
    value = schemas.encode(old)
    eight_days_ago = int((time.time() - 8 * 86400) * 1000)
    headers = keyring_from(s, "order").sign(value, signed_at_ms=eight_days_ago)
    producer = producer_from(s, service="order", fallback=False)
    producer.publish_raw(topic, key=str(old.correlation_id).encode(), value=value, headers=headers)
    producer.publish(follower)
    handled: list[str] = []
    consumer = consumer_from(s, group_id=f"stale-{unique}", handlers={
        "order.created": lambda e, c: handled.append(str(e.event_id))})
    with running(consumer):
        wait_until(lambda: str(follower.event_id) in handled, what="the follower")
        [record] = read_topic(s, schemas.dlq_topic_for("order.created", env=s.env), expect=1)
        letter = DeadLetter.from_record(record.key(), record.value(), record.headers())
        assert letter.error_class.value == "inconsistency"
        assert "signed 8.0 d ago, outside the 7.0 d window" in letter.reason
        assert str(old.event_id) not in handled  # the follower came after it: it was handled, never skipped
        entry = read_entry(s.bootstrap_servers,
                           DlqPosition(record.topic(), record.partition(), record.offset()))
        redrive(entry, producer_from(s, fallback=False), DlqStore(engine_for(s.dsn)), note="genuine, late")
        wait_until(lambda: str(old.event_id) in handled, what="the redriven record")
    assert handled.count(str(old.event_id)) == 1
