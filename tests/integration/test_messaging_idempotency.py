"""Idempotency keys on the real PostgreSQL: one side effect per event and handler, whatever happens."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, func, select, text

import schemas
from core.db import engine_for, ensure_schema
from core.settings import Settings
from messaging import HandlerContext, HandlerSpec
from messaging.idempotency import ClaimState, IdempotencyStore, KeyRequest, idempotency_key
from messaging.metrics import METRICS
from messaging.retry import RetryPolicy
from messaging.wiring import consumer_from, producer_from
from tests.support.messaging_support import (
    caught_up,
    ensure,
    event,
    isolated,
    read_all_now,
    running,
    wait_until,
)

pytestmark = pytest.mark.stack

T = TypeVar("T")

effects_meta = MetaData(schema="messaging_tests")
effects = Table("effects", effects_meta, Column("id", Integer, primary_key=True),
                Column("event_id", String(64), nullable=False), Column("run", String(40), nullable=False))


def _publish_copies(s: Settings, envelope: schemas.Envelope, copies: int) -> None:
    """The very same record (same bytes, same event id) `copies` times, as a redelivering producer would."""
    producer = producer_from(s, service="order", fallback=False)
    value = schemas.encode(envelope)
    headers = producer.keyring.sign(value) + [("x-cf-event-type", envelope.event_type.encode()),
                                              ("x-cf-event-id", str(envelope.event_id).encode())]
    for _ in range(copies):
        producer.publish_raw(schemas.topic_for(envelope.event_type, env=s.env),
                             key=str(envelope.correlation_id).encode(), value=value, headers=headers)


def test_same_event_three_times_runs_the_handler_once(stack, settings: Settings, unique: str) -> None:
    s = isolated(settings, unique)
    ensure(s, "order.created")
    envelope = event()
    sentinel = event(correlation_id=envelope.correlation_id)  # same key: same partition, after the copies
    _publish_copies(s, envelope, 3)
    producer_from(s, service="order", fallback=False).publish(sentinel)
    runs: list[str] = []
    duplicates_before = METRICS.get("duplicates")
    consumer = consumer_from(s, group_id=f"idem-{unique}", batch_size=1,
                             handlers={"order.created":
                                       lambda e, c: runs.append(str(e.event_id)) or {"ok": 1}})
    with running(consumer):
        # the partition is handled in order: once the sentinel ran, every copy before it was handled
        wait_until(lambda: str(sentinel.event_id) in runs, timeout=60,
                   what="the sentinel published after the three copies to be handled")
    assert runs == [str(envelope.event_id), str(sentinel.event_id)]
    assert METRICS.get("duplicates") - duplicates_before >= 2
    key = idempotency_key(envelope.event_id, envelope.correlation_id, f"idem-{unique}")
    row = consumer.idempotency.status_of(key)
    assert row is not None and row["status"] == "succeeded" and row["result"] == {"ok": 1}


def test_two_consumers_at_once_one_side_effect(stack, settings: Settings, unique: str) -> None:
    """Two groups with the same handler name receive the same events at the same moment: the lease lets
    exactly one run each event; the other waits (resource busy), then sees it done."""
    s = isolated(settings, unique)
    ensure(s, "order.created")
    envelopes = [event() for _ in range(5)]
    producer = producer_from(s, service="order", fallback=False)
    for envelope in envelopes:
        producer.publish(envelope)
    runs: list[tuple[str, str]] = []
    lock = threading.Lock()

    def slow(name: str):  # noqa: ANN202 - small factory
        def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
            with lock:
                runs.append((str(envelope.event_id), name))
            time.sleep(0.3)
        return handler

    fast = RetryPolicy(retries=20, initial=0.1, max=0.3)
    consumers = [consumer_from(s, group_id=f"twin-{name}-{unique}", handler_name=f"mailer-{unique}",
                               handlers={"order.created": slow(name)}, retry_policy=fast)
                 for name in ("a", "b")]
    topic = schemas.topic_for("order.created", env=s.env)
    with running(*consumers):
        wait_until(lambda: all(caught_up(s, f"twin-{name}-{unique}", topic) for name in ("a", "b")),
                   timeout=60, what="both groups past every event")
    ran = [event_id for event_id, _ in runs]
    assert sorted(ran) == sorted(str(e.event_id) for e in envelopes)  # each exactly once, by one of them
    assert {name for _, name in runs} <= {"a", "b"}


def test_transactional_handler_commits_with_its_key(stack, settings: Settings, unique: str) -> None:
    """A handler writing to the same database: a failure after its write leaves neither the row nor
    the key; the retry writes the row once, and a redelivery afterwards writes nothing."""
    s = isolated(settings, unique)
    ensure(s, "order.created")
    engine = engine_for(s.dsn)
    ensure_schema(engine, effects_meta)
    envelope = event()
    sentinel = event(correlation_id=envelope.correlation_id)  # same key: same partition
    _publish_copies(s, envelope, 1)
    calls: list[tuple[str, int]] = []

    def handler(e: schemas.Envelope, context: HandlerContext) -> None:
        assert context.db is not None
        context.db.execute(effects.insert().values(event_id=str(e.event_id), run=unique))
        calls.append((str(e.event_id), context.attempt))
        if len(calls) == 1:
            raise TimeoutError("payment gateway timed out after the row was written")

    consumer = consumer_from(s, group_id=f"tx-{unique}", retry_policy=RetryPolicy(3, 0.05, 0.1),
                             handlers={"order.created": HandlerSpec(handler, transactional=True)})
    with running(consumer):
        wait_until(lambda: len(calls) == 2, what="the retry")
        _publish_copies(s, envelope, 1)  # a redelivery after success
        producer_from(s, service="order", fallback=False).publish(sentinel)  # ... and behind it, a sentinel
        wait_until(lambda: (str(sentinel.event_id), 1) in calls, timeout=60,
                   what="the sentinel published after the redelivery to be handled")
    event_id = str(envelope.event_id)
    assert calls == [(event_id, 1), (event_id, 2), (str(sentinel.event_id), 1)]  # the redelivery ran nothing
    with engine.connect() as conn:
        rows = conn.execute(select(effects.c.event_id, func.count()).where(effects.c.run == unique)
                            .group_by(effects.c.event_id)).all()
    assert dict(rows) == {event_id: 1, str(sentinel.event_id): 1}


def test_lease_expiry_and_error_keys_let_a_retry_run(stack, settings: Settings) -> None:
    engine = engine_for(settings.dsn)
    # A lease long enough that a stalled runner cannot let it lapse between the two claims; its end is
    # awaited (the database's clock decides), never slept through.
    first = IdempotencyStore(engine, lease=3.0)
    second = IdempotencyStore(engine, lease=3.0)
    request = KeyRequest.of(uuid.uuid4(), uuid.uuid4(), "handler")
    claimed_at = time.monotonic()
    assert first.claim([request])[request.key].state is ClaimState.ACQUIRED
    assert second.claim([request])[request.key].state is ClaimState.BUSY  # live lease
    wait_until(lambda: second.claim([request])[request.key].state is ClaimState.ACQUIRED, timeout=30,
               what="the lease to run out")
    assert time.monotonic() - claimed_at >= 3.0 - 0.05  # not before the lease ended
    second.fail({request.key: "boom"})
    assert first.claim([request])[request.key].state is ClaimState.ACQUIRED  # errors do not block the retry
    first.complete({request.key: {"n": 1}})
    claim = second.claim([request])[request.key]
    assert (claim.state, claim.result) == (ClaimState.DUPLICATE, {"n": 1})
    with engine.begin() as conn:  # expire it, as 24 h would
        conn.execute(text("UPDATE messaging.idempotency_keys SET expires_at = now() - interval '1 s' "
                          "WHERE key = :k"),
                     {"k": request.key})
    assert first.purge_expired() >= 1
    assert first.status_of(request.key) is None


def test_held_keys_are_renewed_until_dropped(stack, settings: Settings) -> None:
    engine = engine_for(settings.dsn)
    holder = IdempotencyStore(engine, lease=1.5)  # renewed every 0.5 s: slack for a loaded runner
    other = IdempotencyStore(engine, lease=1.5)
    request = KeyRequest.of(uuid.uuid4(), uuid.uuid4(), "handler")
    assert holder.claim([request])[request.key].state is ClaimState.ACQUIRED
    holder.hold([request.key])
    try:
        time.sleep(5.0)  # more than three leases
        assert other.claim([request])[request.key].state is ClaimState.BUSY  # still held
    finally:
        holder.drop([request.key])
    assert holder.held() == set()
    wait_until(lambda: other.claim([request])[request.key].state is ClaimState.ACQUIRED, timeout=10,
               what="the dropped key's lease to run out")


def test_renewal_skips_a_key_being_settled_instead_of_waiting_for_it(stack, settings: Settings) -> None:
    """The lease heartbeat runs beside the batch that settles the same keys: a renewal that waited for
    their row locks could deadlock with the settling statement (each holding rows the other wants).
    A key whose row is locked is being finished: the renewal leaves it and renews the rest at once."""
    engine = engine_for(settings.dsn)
    holder = IdempotencyStore(engine, lease=30.0)
    requests = [KeyRequest.of(uuid.uuid4(), uuid.uuid4(), "handler") for _ in range(2)]
    assert {c.state for c in holder.claim(requests).values()} == {ClaimState.ACQUIRED}
    renewed = _beside_a_row_lock(
        engine, requests[0], lambda: holder.renew([r.key for r in requests]),
        waited="the renewal waited for the locked key instead of renewing the other one")
    assert renewed == 1


def test_slow_handler_keeps_its_claim_beyond_the_lease(stack, settings: Settings, unique: str) -> None:
    """A handler running for four leases is not overtaken: a second consumer (another group, the same
    handler name) waits the whole time, then sees the event done; the handler ran once."""
    s = isolated(settings, unique)
    ensure(s, "order.created")
    engine = engine_for(s.dsn)
    envelope = event()
    producer_from(s, service="order", fallback=False).publish(envelope)
    runs: list[str] = []
    started = threading.Event()

    def slow(name: str):  # noqa: ANN202 - small factory
        def handler(e: schemas.Envelope, context: HandlerContext) -> None:
            runs.append(name)
            started.set()
            time.sleep(4.0)
        return handler

    patient = RetryPolicy(retries=100, initial=0.2, max=0.3)
    a, b = (consumer_from(s, group_id=f"slow-{name}-{unique}", handler_name=f"slow-{unique}",
                          handlers={"order.created": slow(name)}, retry_policy=patient,
                          idempotency=IdempotencyStore(engine, lease=1.0)) for name in ("a", "b"))
    topic = schemas.topic_for("order.created", env=s.env)
    with running(a):
        assert started.wait(60), "the first consumer never ran the handler"
        with running(b):
            wait_until(lambda: all(caught_up(s, f"slow-{name}-{unique}", topic) for name in ("a", "b")),
                       timeout=60, what="both groups past the event")
    assert runs == ["a"]
    key = idempotency_key(envelope.event_id, envelope.correlation_id, f"slow-{unique}")
    assert a.idempotency.status_of(key)["status"] == "succeeded"


def test_dead_holder_is_taken_over_after_the_short_lease(stack, settings: Settings, unique: str) -> None:
    """A consumer that claimed a key and died (no heartbeat any more) blocks the replacement only for
    the default lease (15 s, not a minute); the replacement then runs the handler once. Waiting for a
    lease held elsewhere spends no retries: with a budget of one retry the record is still handled,
    not dead-lettered."""
    s = isolated(settings, unique)
    ensure(s, "order.created")
    engine = engine_for(s.dsn)
    envelope = event()
    dead = IdempotencyStore(engine)
    assert dead.lease <= 15.0
    request = KeyRequest.of(envelope.event_id, envelope.correlation_id, f"heir-{unique}")
    assert dead.claim([request])[request.key].state is ClaimState.ACQUIRED  # ... and the process dies
    claimed = time.monotonic()
    producer_from(s, service="order", fallback=False).publish(envelope)
    runs: list[float] = []

    def handler(e: schemas.Envelope, context: HandlerContext) -> None:
        runs.append(time.monotonic() - claimed)

    heir = consumer_from(s, group_id=f"heir-{unique}", handler_name=f"heir-{unique}",
                         handlers={"order.created": handler},
                         retry_policy=RetryPolicy(retries=1, initial=0.2, max=0.2))
    topic = schemas.topic_for("order.created", env=s.env)
    with running(heir):
        wait_until(lambda: bool(runs), timeout=45, what="the replacement to take the key over")
        # Committed past the record: a dead letter, had there been one, is on the DLQ by now.
        wait_until(lambda: caught_up(s, f"heir-{unique}", topic), timeout=60, what="the heir past the event")
    assert len(runs) == 1
    dlq = schemas.dlq_topic_for("order.created", env=s.env)
    assert read_all_now(s, dlq) == [], "a held lease was dead-lettered"
    assert runs[0] >= dead.lease - 1.0, f"taken over after {runs[0]:.1f}s, before the lease ran out"
    assert heir.idempotency.status_of(request.key)["status"] == "succeeded"


def _settled(store: IdempotencyStore, count: int, result: object = None) -> list[KeyRequest]:
    """`count` keys claimed and completed with `result`: what a redelivery meets again."""
    requests = [KeyRequest.of(uuid.uuid4(), uuid.uuid4(), "handler") for _ in range(count)]
    store.complete({key: result for key in store.claim(requests)})
    return requests


def _beside_a_row_lock(engine: Engine, locked: KeyRequest, call: Callable[[], T], *, waited: str) -> T:
    """`call()` while another transaction holds `locked`'s row (FOR UPDATE); fails with `waited` if
    the call waits for that row."""
    holder = engine.connect()
    transaction = holder.begin()
    holder.execute(text("SELECT 1 FROM messaging.idempotency_keys WHERE key = :k FOR UPDATE"),
                   {"k": locked.key})
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in the thread
            outcome.append(exc)

    caller = threading.Thread(target=run, daemon=True)
    try:
        caller.start()
        caller.join(timeout=10)
        assert outcome, waited
    finally:
        transaction.rollback()
        holder.close()
        caller.join(timeout=10)
    [result] = outcome
    if isinstance(result, Exception):
        raise result
    return result  # type: ignore[return-value]


def _claim_beside_a_row_lock(store: IdempotencyStore, requests: list[KeyRequest],
                             locked: KeyRequest) -> dict:
    """`store.claim(requests)` while another transaction holds `locked`'s row; fails if it waits."""
    return _beside_a_row_lock(store.engine, locked, lambda: store.claim(requests),
                              waited="the claim waited for the row lock of a key that was already done")


def test_a_redelivery_reads_its_done_keys_without_waiting_for_their_rows(stack, settings: Settings) -> None:
    """Redelivered keys that already succeeded are read, not claimed again: the claim's conflict test
    would row-lock each one (and wait for a row another transaction holds) only to find it done."""
    store = IdempotencyStore(engine_for(settings.dsn))
    requests = _settled(store, 20, {"n": 1})
    assert {c.state for c in store.claim(requests).values()} == {ClaimState.DUPLICATE}  # the redelivery
    again = _claim_beside_a_row_lock(store, requests, locked=requests[0])
    assert {key: (c.state, c.result) for key, c in again.items()} == {
        r.key: (ClaimState.DUPLICATE, {"n": 1}) for r in requests}


def test_after_a_redelivery_every_kind_of_key_is_claimed_as_before(stack, settings: Settings) -> None:
    """Once a batch was mostly duplicates, the next batch's keys are looked up first; every key that
    is not done and live must still go through the claim: expired, failed, another's lease, new."""
    engine = engine_for(settings.dsn)
    store = IdempotencyStore(engine, lease=30.0)
    other = IdempotencyStore(engine, lease=30.0)
    done = _settled(store, 3, {"n": 7})
    expired, failed = _settled(store, 1, {"n": 0}) + [KeyRequest.of(uuid.uuid4(), uuid.uuid4(), "handler")]
    with engine.begin() as conn:  # its success has expired (as after 24 h): the key may run again
        conn.execute(text("UPDATE messaging.idempotency_keys SET expires_at = now() - interval '1 s' "
                          "WHERE key = :k"), {"k": expired.key})
    store.claim([failed])
    store.fail({failed.key: "boom"})
    leased = KeyRequest.of(uuid.uuid4(), uuid.uuid4(), "handler")
    assert other.claim([leased])[leased.key].state is ClaimState.ACQUIRED
    new = KeyRequest.of(uuid.uuid4(), uuid.uuid4(), "handler")
    assert {c.state for c in store.claim(_settled(store, 5)).values()} == {ClaimState.DUPLICATE}
    duplicates_before = METRICS.get("duplicates")
    # A done row held by another transaction: only the read-first path answers without waiting.
    claims = _claim_beside_a_row_lock(store, [*done, expired, failed, leased, new], locked=done[0])
    assert {key: (c.state, c.result) for key, c in claims.items()} == {
        **{r.key: (ClaimState.DUPLICATE, {"n": 7}) for r in done},
        expired.key: (ClaimState.ACQUIRED, None), failed.key: (ClaimState.ACQUIRED, None),
        leased.key: (ClaimState.BUSY, None), new.key: (ClaimState.ACQUIRED, None)}
    assert METRICS.get("duplicates") - duplicates_before == len(done)
    assert other.claim([expired])[expired.key].state is ClaimState.BUSY  # really leased to `store` now
    # That batch was mostly not done: the next claims at once again, and still finds a done key.
    assert not store._redelivery
    fresh = [KeyRequest.of(uuid.uuid4(), uuid.uuid4(), "handler") for _ in range(4)]
    claims = store.claim([*fresh, done[0]])
    assert {key: c.state for key, c in claims.items()} == {
        **{r.key: ClaimState.ACQUIRED for r in fresh}, done[0].key: ClaimState.DUPLICATE}


def test_a_transactional_claim_leaves_the_batch_hint_alone(stack, settings: Settings) -> None:
    """A handler's own claim inside its transaction (one key, `final=True`) is no batch: it must not
    decide how the next batch claims."""
    engine = engine_for(settings.dsn)
    store = IdempotencyStore(engine)
    assert {c.state for c in store.claim(_settled(store, 4)).values()} == {ClaimState.DUPLICATE}
    with engine.begin() as conn:
        request = KeyRequest.of(uuid.uuid4(), uuid.uuid4(), "handler")
        assert store.claim([request], final=True, conn=conn)[request.key].state is ClaimState.ACQUIRED
    assert store._redelivery
