"""DLQ handling on the real stack: the four outcomes, and the `cloud-factory dlq` commands."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import schemas
from cloud_factory.cli import app
from core.db import engine_for
from core.settings import Settings, get_settings
from messaging import HandlerContext
from messaging.dlq.letter import DeadLetter
from messaging.dlq.outcomes import Outcome
from messaging.dlq.processor import DlqProcessor
from messaging.dlq.store import DlqStore
from messaging.errors import ErrorClass, NotFoundError, TransientError
from messaging.retry import RetryPolicy
from messaging.tables import dlq_alerts, dlq_incidents, dlq_records
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

ONE_RETRY = RetryPolicy(retries=1, initial=0.05, max=0.1)


def _letter(s: Settings, error_class: ErrorClass, *, dlq_retries: int = 0) -> DeadLetter:
    envelope = event()
    producer = producer_from(s, service="order", fallback=False)
    value = schemas.encode(envelope)
    return DeadLetter(original_topic=schemas.topic_for("order.created", env=s.env), original_partition=0,
                      original_offset=7, key=str(envelope.correlation_id).encode(), value=value,
                      headers=producer.keyring.sign(value)
                      + [("x-cf-event-type", b"order.created"),
                         ("x-cf-event-id", str(envelope.event_id).encode())],
                      error_class=error_class, reason=f"{error_class.value} in test", attempts=3,
                      handler="h", dlq_retries=dlq_retries)


def _processor(s: Settings, unique: str, **kwargs: object) -> DlqProcessor:
    return DlqProcessor(s.bootstrap_servers, producer=producer_from(s, service="order", fallback=False),
                        store=DlqStore(engine_for(s.dsn)), topics=[schemas.dlq_topics_pattern(s.env)],
                        group_id=f"dlqp-{unique}", policy=lambda _t: ONE_RETRY, **kwargs)  # type: ignore[arg-type]


def _drain(processor: DlqProcessor, count: int, *, timeout: float = 60.0) -> list[Outcome]:
    """The next `count` outcomes of `processor`; fails after `timeout` s naming how many it got."""
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + timeout
    while len(outcomes) < count:
        assert time.monotonic() < deadline, (
            f"timed out waiting for {count} DLQ outcomes: got {len(outcomes)} ({outcomes}) in {timeout:.0f}s")
        outcome = processor.poll_once(0.3)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def test_four_outcomes(stack, settings: Settings, unique: str) -> None:
    s = isolated(settings, unique)
    ensure(s, "order.created")
    producer = producer_from(s, service="order", fallback=False)
    letters = [_letter(s, ErrorClass.VALIDATION), _letter(s, ErrorClass.TRANSIENT),
               _letter(s, ErrorClass.TRANSIENT, dlq_retries=3), _letter(s, ErrorClass.NOT_FOUND)]
    letters += [_letter(s, ErrorClass.VALIDATION) for _ in range(8)]  # 12 in the hour: above the threshold
    for letter in letters:
        producer.publish_raw(letter.topic, key=letter.key, value=letter.value,
                             headers=letter.record_headers())
    processor = _processor(s, unique)
    try:
        outcomes = _drain(processor, len(letters))
    finally:
        processor.close()
    assert sorted(outcomes) == sorted([Outcome.DISCARDED] * 9 + [Outcome.RETRIED]
                                      + [Outcome.MANUAL_REVIEW] * 2)
    # retry: back on the original topic, same bytes and event id, retry count carried
    [again] = read_topic(s, letters[1].original_topic, expect=1)
    assert again.value() == letters[1].value
    assert dict(again.headers())["x-cf-dlq-retries"] == b"1"
    assert not any(k.startswith("x-cf-dlq-") and k != "x-cf-dlq-retries" for k, _ in again.headers())
    engine = engine_for(s.dsn)
    with engine.connect() as conn:
        rows = conn.execute(select(dlq_records.c.event_id, dlq_records.c.outcome, dlq_incidents.c.status)
                            .outerjoin(dlq_incidents, dlq_incidents.c.dlq_record_id == dlq_records.c.id)
                            .where(dlq_records.c.original_topic == letters[0].original_topic)).all()
        alerts = conn.execute(select(dlq_alerts.c.records).where(
            dlq_alerts.c.original_topic == letters[0].original_topic)).scalars().all()
    by_event = {row.event_id: (row.outcome, row.status) for row in rows}
    assert by_event[letters[0].event_id] == ("discarded", None)  # audit row, no incident
    assert by_event[letters[1].event_id] == ("retried", None)
    assert by_event[letters[2].event_id] == ("manual_review", "open")
    assert by_event[letters[3].event_id] == ("manual_review", "open")
    assert alerts == [11]  # one alert, raised by the 11th record of the hour


def test_poison_message_full_circle(stack, settings: Settings, unique: str) -> None:
    """A handler that always times out: retried in place, dead-lettered, retried from the DLQ until the
    DLQ retries run out, then an incident — the partition never stalls."""
    s = isolated(settings, unique)
    ensure(s, "order.created")
    producer = producer_from(s, service="order", fallback=False)
    poison, healthy = event(), event()
    producer.publish(poison)
    producer.publish(healthy)
    calls: list[str] = []

    def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
        calls.append(str(envelope.event_id))
        if envelope.event_id == poison.event_id:
            raise TransientError("downstream timed out")

    consumer = consumer_from(s, group_id=f"poison-{unique}", handlers={"order.created": handler},
                             retry_policy=ONE_RETRY)
    processor = _processor(s, unique, max_dlq_retries=2)
    stop = threading.Event()
    thread = threading.Thread(target=processor.run, args=(stop,), kwargs={"poll_timeout": 0.2}, daemon=True)
    thread.start()
    engine = engine_for(s.dsn)

    def incident() -> bool:
        with engine.connect() as conn:
            return conn.execute(select(dlq_incidents.c.id).join(
                dlq_records, dlq_records.c.id == dlq_incidents.c.dlq_record_id).where(
                dlq_records.c.event_id == str(poison.event_id))).first() is not None

    try:
        with running(consumer):
            wait_until(incident, timeout=60, what="the incident")
    finally:
        stop.set()
        thread.join(30)
    # 3 passes through the consumer (first + 2 DLQ retries), 2 attempts each; the healthy one once.
    assert calls.count(str(poison.event_id)) == 6
    assert calls.count(str(healthy.event_id)) == 1


@pytest.fixture
def cli_env(settings: Settings, unique: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("CF_ENV", f"t{unique}")
    get_settings.cache_clear()
    yield get_settings()
    monkeypatch.undo()
    get_settings.cache_clear()


def test_cli_list_show_redrive_discard(stack, cli_env: Settings, unique: str) -> None:
    s = cli_env
    ensure(s, "order.created")
    old = event(version="v1")  # an old payload version: redrive upcasts it
    producer = producer_from(s, service="order", fallback=False)
    producer.publish(old)
    broken = b"{not json"
    producer.publish_raw(schemas.topic_for("order.created", env=s.env), key=b"k", value=broken,
                         headers=producer.keyring.sign(broken))
    failing = {"on": True}

    def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
        if failing["on"]:
            raise NotFoundError(f"customer of {envelope.event_id} unknown")

    consumer = consumer_from(s, group_id=f"cli-{unique}", handlers={"order.created": handler})
    with running(consumer):
        read_topic(s, schemas.dlq_topic_for("order.created", env=s.env), expect=2)
    runner = CliRunner()
    listed = runner.invoke(app, ["dlq", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    by_class = {row["errorClass"]: row for row in rows}
    assert set(by_class) == {"not_found", "validation"}
    assert (by_class["not_found"]["eventId"] == str(old.event_id)
            and by_class["not_found"]["outcome"] == "pending")

    shown = runner.invoke(app, ["dlq", "show", by_class["not_found"]["position"]])
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.output)
    assert (detail["event"]["version"] == "v3" and detail["attempts"] == 1
            and detail["errorClass"] == "not_found")

    refused = runner.invoke(app, ["dlq", "redrive", by_class["validation"]["position"]])
    assert refused.exit_code == 1 and "dlq discard" in refused.output
    discarded = runner.invoke(app, ["dlq", "discard", by_class["validation"]["position"],
                                    "--reason", "garbage"])
    assert discarded.exit_code == 0, discarded.output

    failing["on"] = False
    redriven = runner.invoke(app, ["dlq", "redrive", by_class["not_found"]["position"]])
    assert redriven.exit_code == 0, redriven.output
    records = sorted(read_topic(s, schemas.topic_for("order.created", env=s.env), expect=3),
                     key=lambda m: m.timestamp()[1])
    assert len(records) == 3
    redelivered = schemas.decode(records[-1].value())
    assert redelivered.event_id == old.event_id and redelivered.version == "v3"
    assert b'"version":"v3"' in records[-1].value()  # upcast on redrive, re-signed
    assert producer.keyring.verify(records[-1].value(), records[-1].headers()).ok
    after = {row["errorClass"]: row["outcome"] for row in
             map(json.loads, runner.invoke(app, ["dlq", "list", "--json"]).output.splitlines())}
    assert after == {"not_found": "redriven", "validation": "discarded"}


def test_redrive_refuses_to_vouch_for_a_record_its_own_signature_does_not(stack, cli_env: Settings,
                                                                          unique: str) -> None:
    """A record forged with Notification's key, dead-lettered as `permission`, must not become a genuine
    Order record by one redrive: that needs --force-resign (someone checked it)."""
    from messaging.wiring import keyring_from

    s = cli_env
    ensure(s, "order.created")
    forged = event()
    value = schemas.encode(forged)
    producer = producer_from(s, fallback=False)
    producer.publish_raw(schemas.topic_for("order.created", env=s.env),
                         key=str(forged.correlation_id).encode(), value=value,
                         headers=keyring_from(s, "notification").sign(value))
    handled: list[str] = []
    consumer = consumer_from(s, group_id=f"forged-{unique}", handlers={
        "order.created": lambda envelope, context: handled.append(str(envelope.event_id))})
    with running(consumer):
        [letter] = read_topic(s, schemas.dlq_topic_for("order.created", env=s.env), expect=1)
        position = f"{letter.topic()}:{letter.partition()}:{letter.offset()}"
        runner = CliRunner()
        refused = runner.invoke(app, ["dlq", "redrive", position])
        assert refused.exit_code == 1
        assert "signed by notification" in refused.output and "--force-resign" in refused.output
        assert "Traceback" not in refused.output
        # The refusal comes before any publish (which waits for its ack): the log end proves nothing went out.
        assert len(read_all_now(s, schemas.topic_for("order.created", env=s.env))) == 1
        forced = runner.invoke(app, ["dlq", "redrive", position, "--force-resign", "--note",
                                     "checked by hand"])
        assert forced.exit_code == 0, forced.output
        wait_until(lambda: str(forged.event_id) in handled, what="the record an operator vouched for")
    assert handled == [str(forged.event_id)]
