"""An in-memory transport for handler unit tests: no Kafka, no PostgreSQL, the consumer's own checks.

`InMemoryTransport` keeps every topic as a list of records in memory. Publishing an envelope encodes
it and signs it with a real `schemas.Keyring`, bound to one service as the real producer is (a
service may sign only the event types it publishes). Each record then goes through the consumer's
real reading path (`messaging.consumer.reading`: signature check, decode + upcast, signer and
freshness checks, tenant filter) and its real dispatch and failure routing
(`messaging.consumer.dispatch`, `.handling`, `.deadlettering`): handlers get the same
`HandlerContext`, a failure is classified by `messaging.errors`, retried in place per its retry
profile (at once: backoffs are not waited) and dead-lettered — as a real `DeadLetter` record on the
topic's DLQ topic, never dropped. Duplicates are suppressed by the real idempotency keys, kept in a
dict (`MemoryKeys`), unless a consumer is subscribed without them.

What handlers emit through `transport.producer(service)` (an `EventProducer` look-alike that
`services.common.emitter.Emitter` accepts) is signed, kept on its topic and delivered onward to
whichever test consumer subscribes to that topic::

    transport = InMemoryTransport()
    seen = transport.subscribe({"order.created": handler}, group="unit")
    transport.publish(envelope)                       # signed by the type's publisher, delivered
    assert seen.outcomes[-1].finish is Finish.HANDLED
    transport.events("billing.payment-captured")      # what handlers emitted, decoded
    transport.dead_letters()                          # DeadLetter records, as the DLQ admin reads them

Every topic has one partition; records are delivered in publishing order, one at a time.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import schemas
from messaging.consumer.claims import BatchClaims
from messaging.consumer.deadlettering import FailureRouter
from messaging.consumer.dispatch import Dispatcher, HandlerTable
from messaging.consumer.freshness import DEFAULT_MAX_EVENT_AGE_S
from messaging.consumer.handling import Finish, finish_record
from messaging.consumer.health import DEFAULT_PARK_AFTER_S
from messaging.consumer.reading import RecordReader
from messaging.consumer.retries import InPlaceRetries
from messaging.dlq.letter import DeadLetter
from messaging.dlq.route import DeadLetterRoute
from messaging.handlers import HandlerEntry
from messaging.idempotency import Claim, ClaimState, IdempotencyStore, KeyRequest
from messaging.producer import Delivery, DeliveryCallback, record_headers
from messaging.retry import PolicyLookup, RetryPolicy, policy_lookup

__all__ = ["MAX_ATTEMPTS", "Finish", "InMemoryTransport", "MemoryConsumer", "MemoryKeys", "MemoryProducer",
           "MemoryRecord", "Outcome", "keyring_for_tests"]

#: A record still retried after this many attempts stops the test (a handler raising
#: `LeaseHeldError` forever would otherwise never end).
MAX_ATTEMPTS = 100


def keyring_for_tests() -> schemas.Keyring:
    """A keyring with one fresh HMAC key for every service (as `cloud-factory stack up` makes them)."""
    return schemas.Keyring.parse(",".join(schemas.generate_entry(service, f"test-{service.value}")
                                          for service in schemas.Service))


@dataclass(frozen=True)
class MemoryRecord:
    """One record on an in-memory topic; reads like the `confluent_kafka.Message` a consumer fetches."""

    topic_name: str
    position: int
    key_bytes: bytes | None
    value_bytes: bytes
    header_list: tuple[tuple[str, bytes], ...]

    def topic(self) -> str:
        return self.topic_name

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self.position

    def key(self) -> bytes | None:
        return self.key_bytes

    def value(self) -> bytes:
        return self.value_bytes

    def headers(self) -> list[tuple[str, bytes]]:
        return list(self.header_list)  # a fresh list per call, as confluent-kafka returns

    def error(self) -> None:
        return None


@dataclass(frozen=True)
class Outcome:
    """How one consumer finished one record: `HANDLED` (also: a duplicate skipped, or nobody here
    serves it — see `served`) or `ROUTED` (dead-lettered: `dead_letter` says why)."""

    record: MemoryRecord
    finish: Finish
    attempts: int
    served: bool
    envelope: schemas.Envelope | None = None
    dead_letter: DeadLetter | None = None


class MemoryKeys:
    """The idempotency store's interface kept in a dict: the same keys and duplicate decisions as
    `IdempotencyStore`, without leases (one thread) or expiry. A transactional handler's key is
    claimed in a "transaction" (`begin`) that keeps it only if the handler succeeds; the handler's
    `context.db` is None, as it is for a consumer without a store."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}  # succeeded key -> the handler's result
        self.failures: dict[str, str] = {}  # the last failure of each key, for assertions
        self._open: list[dict[str, Any]] = []

    @property
    def engine(self) -> MemoryKeys:
        """What `Dispatcher` opens a transactional handler's transaction on."""
        return self

    @contextlib.contextmanager
    def begin(self) -> Iterator[None]:
        pending: dict[str, Any] = {}
        self._open.append(pending)
        try:
            yield None
        finally:
            self._open.pop()
        self.results.update(pending)  # not reached when the handler raised: its key is not kept

    def claim(self, requests: Iterable[KeyRequest], *, final: bool = False,
              conn: Any = None) -> dict[str, Claim]:
        claims = {}
        for request in requests:
            if request.key in self.results:
                claims[request.key] = Claim(request.key, ClaimState.DUPLICATE, self.results[request.key])
                continue
            claims[request.key] = Claim(request.key, ClaimState.ACQUIRED)
            if final:
                self._pending()[request.key] = None
        return claims

    def complete(self, results: Mapping[str, Any], *, conn: Any = None) -> None:
        (self._open[-1] if self._open else self.results).update(results)

    def fail(self, errors: Mapping[str, str]) -> None:
        self.failures.update(errors)  # a failed key stays claimable, as in the store

    def release(self, keys: Iterable[str]) -> None:
        """Nothing is held between deliveries."""

    def hold(self, keys: Iterable[str]) -> None:
        """No leases to renew."""

    def drop(self, keys: Iterable[str]) -> None:
        """No leases to renew."""

    def _pending(self) -> dict[str, Any]:
        if not self._open:
            raise RuntimeError("a final claim outside a transaction (MemoryKeys.begin)")
        return self._open[-1]


class MemoryProducer:
    """`EventProducer`'s publishing interface onto the transport's topics, signing as one service
    with the real record headers (`messaging.producer.record_headers`)."""

    def __init__(self, transport: InMemoryTransport, keyring: schemas.Keyring, env: str) -> None:
        self.transport = transport
        self.keyring = keyring
        self.env = env

    def topic_for(self, envelope: schemas.Envelope) -> str:
        return schemas.topic_for(envelope.event_type, env=self.env)

    def publish(self, envelope: schemas.Envelope, *, topic: str | None = None,
                timeout: float = 30.0) -> Delivery:
        value = schemas.encode(envelope)
        key = str(envelope.correlation_id).encode()
        headers = record_headers(envelope, value, self.keyring, key=key)
        return self.publish_raw(topic or self.topic_for(envelope), key=key, value=value, headers=headers)

    def send(self, envelope: schemas.Envelope, *, topic: str | None = None,
             on_delivery: DeliveryCallback | None = None) -> None:
        delivery = self.publish(envelope, topic=topic)
        if on_delivery is not None:
            on_delivery(None, delivery)

    def publish_raw(self, topic: str, *, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]],
                    timeout: float = 30.0) -> Delivery:
        record = self.transport.append(topic, key=key, value=value, headers=headers)
        return Delivery(record.topic_name, 0, record.position)

    def send_raw(self, topic: str, *, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]],
                 on_delivery: DeliveryCallback | None = None) -> None:
        delivery = self.publish_raw(topic, key=key, value=value, headers=headers)
        if on_delivery is not None:
            on_delivery(None, delivery)

    def flush(self, timeout: float = 30.0) -> int:
        return 0

    def close(self, timeout: float = 30.0) -> None:
        """Nothing to flush."""


class _NoBroker:
    """What `InPlaceRetries` asks of a Kafka consumer, for a transport that re-reads a record at once."""

    def pause(self, partitions: object) -> None:
        """Nothing to pause."""

    def seek(self, partition: object) -> None:
        """The transport hands the same record again."""

    def resume(self, partitions: object) -> None:
        """Nothing to resume."""


@dataclass
class MemoryConsumer:
    """One subscribed consumer group: the consumer's reader, dispatcher and failure router over the
    transport's topics. `outcomes` lists how each record it was handed ended."""

    transport: InMemoryTransport
    group_id: str
    topics: frozenset[str]
    reader: RecordReader
    dispatcher: Dispatcher
    retries: InPlaceRetries
    failures: FailureRouter
    keys: IdempotencyStore | MemoryKeys | None
    outcomes: list[Outcome] = field(default_factory=list)

    def deliver(self, record: MemoryRecord) -> Outcome:
        """Read, claim and dispatch `record` as one batch, retrying it in place until it is done."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            item = self.reader.read(record)  # type: ignore[arg-type] - a MemoryRecord reads like a Message
            claims = BatchClaims.claim(self.keys, [item])  # type: ignore[arg-type] - MemoryKeys is one
            with claims.held():
                finish = finish_record(item, claims, self.dispatcher, self.retries, self.failures)
                claims.settle()
            if finish is Finish.RETRY:
                continue
            outcome = Outcome(record, finish, attempt, item.served, item.envelope,
                              self._last_dead_letter(record) if finish is Finish.ROUTED else None)
            self.outcomes.append(outcome)
            return outcome
        raise RuntimeError(f"{self.group_id}: {record.topic_name}@{record.position} still retried after "
                           f"{MAX_ATTEMPTS} attempts")

    def _last_dead_letter(self, record: MemoryRecord) -> DeadLetter | None:
        for letter in reversed(self.transport.dead_letters()):
            if letter.group == self.group_id and (letter.original_topic, letter.original_offset) == (
                    record.topic_name, record.position):
                return letter
        return None


class InMemoryTransport:
    """Topics in memory, consumers subscribed to them, producers publishing onto them (see the module)."""

    def __init__(self, keyring: schemas.Keyring | None = None, *, env: str = "test") -> None:
        self.keyring = keyring or keyring_for_tests()
        self.env = env
        self.topics: dict[str, list[MemoryRecord]] = {}
        self.consumers: list[MemoryConsumer] = []
        self._queue: deque[MemoryRecord] = deque()
        self._delivering = False

    # -- consumers ------------------------------------------------------------------------------
    def subscribe(self, handlers: Mapping[str, HandlerEntry], *, group: str,
                  topics: Iterable[str] | None = None, keyring: schemas.Keyring | None = None,
                  signing_mode: schemas.SigningMode = schemas.SigningMode.PRODUCTION,
                  accept: Callable[[schemas.Envelope], bool] | None = None,
                  idempotency: IdempotencyStore | MemoryKeys | None = None, dedupe: bool = True,
                  retry_policy: RetryPolicy | PolicyLookup | None = None,
                  max_event_age_s: float = DEFAULT_MAX_EVENT_AGE_S) -> MemoryConsumer:
        """A consumer group as `EventConsumer(group_id=group, handlers=handlers, ...)` would be, reading
        `topics` (default: the topics of the handled event types) with `keyring` (default: the
        transport's). Its keys are `idempotency` (e.g. a real `IdempotencyStore` in an integration
        test), else kept in memory unless `dedupe=False`."""
        keys = idempotency if idempotency is not None else (MemoryKeys() if dedupe else None)
        table = HandlerTable(handlers, group)
        reader = RecordReader(keyring or self.keyring, signing_mode, table, accept=accept,
                              max_event_age_s=max_event_age_s, with_keys=keys is not None)
        retries = InPlaceRetries(_NoBroker())  # type: ignore[arg-type] - only pause/seek/resume are asked
        dead_letters = DeadLetterRoute(self.producer(None))  # type: ignore[arg-type] - a producer look-alike
        failures = FailureRouter(retries, dead_letters, policy_lookup(retry_policy), group_id=group,
                                 park_after_s=DEFAULT_PARK_AFTER_S)
        names = set(topics) if topics is not None else {schemas.topic_for(t, env=self.env) for t in handlers}
        dispatcher = Dispatcher(keys, group)  # type: ignore[arg-type] - MemoryKeys stands in for the store
        consumer = MemoryConsumer(self, group, frozenset(names), reader, dispatcher, retries, failures, keys)
        self.consumers.append(consumer)
        return consumer

    # -- producing ------------------------------------------------------------------------------
    def producer(self, service: schemas.Service | str | None) -> MemoryProducer:
        """A producer signing as `service` (None: one that cannot sign, for raw records such as dead
        letters, which keep the original's signature)."""
        keyring = self.keyring.as_signer(service) if service is not None else self.keyring
        return MemoryProducer(self, keyring, self.env)

    def publish(self, envelope: schemas.Envelope, *,
                signer: schemas.Service | str | None = None) -> MemoryRecord:
        """Sign `envelope` as `signer` (default: its type's catalog publisher), put it on its topic and
        deliver it — and whatever the handlers emit in turn — to the subscribed consumers."""
        service = signer if signer is not None else schemas.catalog.require(envelope.event_type).publisher
        delivery = self.producer(service).publish(envelope)
        self.run()
        return self.topics[delivery.topic][delivery.offset]

    def publish_raw(self, topic: str, *, value: bytes, headers: Iterable[tuple[str, bytes]],
                    key: bytes | None = None) -> MemoryRecord:
        """Put hand-made bytes on `topic` (a forged or tampered record) and deliver them."""
        record = self.append(topic, key=key, value=value, headers=list(headers))
        self.run()
        return record

    def append(self, topic: str, *, key: bytes | None, value: bytes,
               headers: list[tuple[str, bytes]]) -> MemoryRecord:
        """Add a record to `topic` and queue it for its consumers (delivered by `run`)."""
        log = self.topics.setdefault(topic, [])
        record = MemoryRecord(topic, len(log), key, value, tuple(headers))
        log.append(record)
        self._queue.append(record)
        return record

    def run(self) -> None:
        """Deliver what is queued, in order, until nothing is (a record published while a handler runs
        is queued behind the record in hand, as on a broker)."""
        if self._delivering:
            return  # called from inside a handler: the outer loop delivers it
        self._delivering = True
        try:
            while self._queue:
                record = self._queue.popleft()
                for consumer in self.consumers:
                    if record.topic_name in consumer.topics:
                        consumer.deliver(record)
        finally:
            self._delivering = False

    # -- reading back ---------------------------------------------------------------------------
    def records(self, topic: str) -> list[MemoryRecord]:
        return list(self.topics.get(topic, ()))

    def events(self, event_type: str | None = None) -> list[schemas.Envelope]:
        """Every event on the transport's topics (DLQ topics aside), decoded, in publishing order per
        topic; only those of `event_type` when given. Records that do not decode (a test's hand-made
        bytes) are left out: `records(topic)` has them."""
        found = []
        for topic, log in self.topics.items():
            if schemas.is_dlq_topic(topic):
                continue
            for record in log:
                try:
                    envelope = schemas.decode(record.value_bytes)
                except schemas.ContractError:
                    continue
                if event_type is None or envelope.event_type == event_type:
                    found.append(envelope)
        return found

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter on the DLQ topics, parsed as the DLQ tools read them."""
        return [DeadLetter.from_record(record.key_bytes, record.value_bytes, record.header_list)
                for topic, log in self.topics.items() if schemas.is_dlq_topic(topic) for record in log]

