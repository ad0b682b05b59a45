"""The consumer's parts on their own, without a broker or a database: in-place retries pause, rewind
and resume one partition; a batch's claims skip transactional handlers and settle what ran."""

from __future__ import annotations

import time
from typing import Any

from messaging.consumer.claims import BatchClaims
from messaging.consumer.inflight import InFlight
from messaging.consumer.retries import InPlaceRetries
from messaging.handlers import HandlerSpec
from messaging.idempotency import Claim, ClaimState, KeyRequest


class _Message:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._where = (topic, partition, offset)

    def topic(self) -> str:
        return self._where[0]

    def partition(self) -> int:
        return self._where[1]

    def offset(self) -> int:
        return self._where[2]

    def headers(self) -> list[tuple[str, bytes]]:
        return []


class _Consumer:
    """Records what the retries ask of a confluent_kafka.Consumer."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[tuple[str, int, int]]]] = []

    def _log(self, what: str, partitions: Any) -> None:
        items = partitions if isinstance(partitions, list) else [partitions]
        self.calls.append((what, [(p.topic, p.partition, p.offset) for p in items]))

    def pause(self, partitions: Any) -> None:
        self._log("pause", partitions)

    def seek(self, partition: Any) -> None:
        self._log("seek", partition)

    def resume(self, partitions: Any) -> None:
        self._log("resume", partitions)


def test_a_retried_record_pauses_and_rewinds_its_partition_until_its_backoff_passed() -> None:
    consumer = _Consumer()
    retries = InPlaceRetries(consumer)  # type: ignore[arg-type]
    msg = _Message("t", 1, 7)
    item = InFlight(msg, [])  # type: ignore[arg-type]
    assert retries.attempt(item) == 1 and not retries.paused(("t", 1))
    state = retries.state_of(msg)  # type: ignore[arg-type]
    state.failures += 1
    retries.retry_later(msg, state, 0.05)  # type: ignore[arg-type]
    assert [what for what, _ in consumer.calls] == ["pause", "seek"] and consumer.calls[1][1][0][2] == 7
    assert retries.paused(("t", 1)) and not retries.paused(("t", 0)) and retries.attempt(item) == 2
    retries.resume_due()
    assert len(consumer.calls) == 2  # not due yet
    time.sleep(0.06)
    retries.resume_due()
    assert consumer.calls[-1][0] == "resume" and not retries.paused(("t", 1))
    assert retries.stuck(after_s=3600) == () and len(retries.stuck(after_s=-1)) == 1
    retries.handled(item)
    assert retries.attempt(item) == 1 and retries.next_wake() is None


class _Store:
    def __init__(self) -> None:
        self.asked: list[str] = []
        self.done: dict[str, Any] = {}
        self.released: set[str] = set()
        self.held: list[str] = []

    def claim(self, requests: list[KeyRequest]) -> dict[str, Claim]:
        self.asked += [r.key for r in requests]
        return {r.key: Claim(r.key, ClaimState.ACQUIRED) for r in requests}

    def hold(self, keys: list[str]) -> None:
        self.held = list(keys)

    def drop(self, keys: list[str]) -> None:
        self.held = []

    def complete(self, results: dict[str, Any]) -> None:
        self.done |= results

    def fail(self, errors: dict[str, str]) -> None:
        self.done |= errors

    def release(self, keys: set[str]) -> None:
        self.released |= keys


def _item(offset: int, specs: list[HandlerSpec], keys: list[str]) -> InFlight:
    item = InFlight(_Message("t", 0, offset), [])  # type: ignore[arg-type]
    item.specs = specs
    item.requests = [KeyRequest(key, spec.name or "", None, None)  # type: ignore[arg-type]
                     for key, spec in zip(keys, specs, strict=True)]
    return item


def test_a_batch_claims_only_non_transactional_keys_and_releases_what_never_ran() -> None:
    store = _Store()
    plain = HandlerSpec(lambda e, c: None, "plain")
    tx = HandlerSpec(lambda e, c: None, "tx", transactional=True)
    items = [_item(0, [plain, tx], ["k0", "k0-tx"]), _item(1, [plain], ["k1"])]
    claims = BatchClaims.claim(store, items)  # type: ignore[arg-type]
    assert store.asked == ["k0", "k1"] and claims.acquired == ["k0", "k1"] and claims.error is None
    with claims.held():
        assert store.held == ["k0", "k1"]
        claims.succeeded["k0"] = {"ok": True}
        claims.settle()
    assert store.held == [] and store.done == {"k0": {"ok": True}} and store.released == {"k1"}


def test_without_a_store_a_batch_claims_nothing() -> None:
    claims = BatchClaims.claim(None, [_item(0, [HandlerSpec(lambda e, c: None, "h")], ["k"])])
    with claims.held():
        claims.settle()
    assert claims.claims == {} and claims.acquired == []


class _Record(_Message):
    def __init__(self, offset: int, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        super().__init__("t", 0, offset)
        self._value, self._headers = value, headers

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return list(self._headers)


def test_two_copies_of_a_record_in_one_batch_run_its_handler_once() -> None:
    """A record the producer wrote twice (a timed-out delivery that landed, then its spooled copy) may
    arrive twice in one batch; both copies acquire the same key, so the second must see the first."""
    import uuid

    import schemas
    from messaging.consumer.dispatch import Dispatcher, HandlerTable
    from messaging.consumer.reading import RecordReader
    from schemas.examples import example_data

    envelope = schemas.new_event("order.created", example_data("order.created",
                                                                schemas.catalog["order.created"].latest_version),
                                 tenant_id="t", correlation_id=uuid.uuid4(), producer="order-service",
                                 actor=schemas.Actor(id="unit", type=schemas.ActorType.SYSTEM))
    value = schemas.encode(envelope)
    keyring = schemas.Keyring.parse("order/k1:secret-one")
    headers = list(keyring.as_signer("order").sign(value))
    runs: list[int] = []
    table = HandlerTable({"order.created": lambda env, context: runs.append(context.offset)}, "unit")
    reader = RecordReader(keyring, schemas.SigningMode.PRODUCTION, table)
    items = [reader.read(_Record(offset, value, headers)) for offset in (3, 4)]  # type: ignore[arg-type]
    store = _Store()
    claims = BatchClaims.claim(store, items)  # type: ignore[arg-type]
    dispatcher = Dispatcher(store, "unit")  # type: ignore[arg-type]
    for item in items:
        dispatcher.handle(item, claims, attempt=1)
    assert runs == [3] and list(claims.succeeded) == [items[0].requests[0].key]
