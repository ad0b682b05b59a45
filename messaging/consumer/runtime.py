"""The poll loop of the at-least-once consumer: fetch a batch, read, claim, dispatch, route the
failures, commit.

Per message: verify signature → decode + upcast → idempotency check → handler → store result →
commit that message's offset. Messages are fetched in batches; idempotency keys are claimed and
stored with one statement per batch, and the offsets committed after a batch are exactly those of
the last handled-or-dead-lettered message of each partition (`offset + 1`, as `commit(message=…)`
would) — never the consumer's position. So a crash at any point redelivers what was not finished.
A failed batch as a whole (the database or the group coordinator went away) is rewound and delivered
again; a commit refused by a rebalance is no failure (`messaging.commits`): the batch was handled,
its keys stored, and the partitions' new owner skips what it redelivers. Revoked partitions are
committed and forgotten; `run` stops gracefully when its stop event is set (`run_until_signalled`
sets it on SIGTERM/SIGINT).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, Message, TopicPartition

import schemas
from core.db import unreachable_database
from messaging.client_logs import client_config
from messaging.commits import CoordinatorUnavailableError, commit
from messaging.consumer.claims import BatchClaims
from messaging.consumer.deadlettering import FailureRouter
from messaging.consumer.dispatch import Dispatcher, HandlerTable
from messaging.consumer.freshness import DEFAULT_MAX_EVENT_AGE_S
from messaging.consumer.gctune import tune_gc_for_throughput
from messaging.consumer.handling import Finish, finish_record
from messaging.consumer.health import DEFAULT_PARK_AFTER_S, DEFAULT_STUCK_AFTER_S, ConsumerHealth
from messaging.consumer.inflight import TP, InFlight
from messaging.consumer.reading import RecordReader
from messaging.consumer.refused import RefusedCommits
from messaging.consumer.retries import InPlaceRetries
from messaging.dlq.route import DeadLetterRoute
from messaging.groups import GROUP_PROTOCOL_CONFIG, join_config
from messaging.handlers import HandlerEntry
from messaging.idempotency import IdempotencyStore
from messaging.metrics import METRICS
from messaging.producer import EventProducer
from messaging.retry import PolicyLookup, RetryPolicy, policy_lookup

__all__ = ["EventConsumer", "run_until_signalled"]

log = logging.getLogger(__name__)

_RETRY = Finish.RETRY  # read once: an enum member read through its class costs ~70 ns a record


class EventConsumer:
    """One Kafka consumer in a group, dispatching each event type to its handler(s)."""

    def __init__(self, bootstrap_servers: str, *, group_id: str, topics: Iterable[str],
                 handlers: Mapping[str, HandlerEntry], keyring: schemas.Keyring,
                 signing_mode: schemas.SigningMode, dlq_producer: EventProducer,
                 extra_config: dict[str, object] | None = None,
                 handler_name: str | None = None,
                 idempotency: IdempotencyStore | None = None,
                 retry_policy: RetryPolicy | PolicyLookup | None = None,
                 batch_size: int = 500, cleanup_interval: float = 300.0,
                 accept: Callable[[schemas.Envelope], bool] | None = None,
                 max_event_age_s: float = DEFAULT_MAX_EVENT_AGE_S,
                 dead_letters: DeadLetterRoute | None = None,
                 park_after_s: float = DEFAULT_PARK_AFTER_S,
                 stuck_after_s: float = DEFAULT_STUCK_AFTER_S) -> None:
        """`idempotency` is the store of the handlers' keys (None: no keys; build it in the composition
        root, e.g. `messaging.wiring.idempotency_from`). `accept`, when given, decides after
        verification and decoding whether this consumer serves a record at all (tenant sharding): a
        record it refuses is acknowledged like a handled one, but without an idempotency key, a
        transaction or a handler call — as if another shard had it. A record signed more than
        `max_event_age_s` ago is dead-lettered as an Inconsistency (a replay). `dead_letters` routes
        records to the DLQ (default: through `dlq_producer`, with no database for references and
        parked records — `messaging.wiring.consumer_from` passes the settings' one)."""
        self.group_id = group_id
        self.handler_name = handler_name or group_id
        self.topics = list(topics)
        self.dlq_producer = dlq_producer
        self.dead_letters = dead_letters or DeadLetterRoute(dlq_producer)
        self.stuck_after_s = stuck_after_s
        self.batch_size = batch_size
        self.cleanup_interval = cleanup_interval
        self._idempotency = idempotency
        self._table = HandlerTable(handlers, self.handler_name)
        self._reader = RecordReader(keyring, signing_mode, self._table, accept=accept,
                                    max_event_age_s=max_event_age_s, with_keys=idempotency is not None)
        self._dispatcher = Dispatcher(idempotency, self.handler_name)
        self._last_cleanup = time.monotonic()
        self._closed = False
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap_servers,
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            **GROUP_PROTOCOL_CONFIG,
            "log_level": 3,
            # A resumed partition is fetched within ~0.1 s, so retry delays stay close to the profile.
            "fetch.wait.max.ms": 100,
            **client_config(str((extra_config or {}).get("client.id", f"{group_id}-consumer"))),
            **join_config(bootstrap_servers, group_id, extra_config or {}),
        })
        self._retries = InPlaceRetries(self._consumer)
        self._failures = FailureRouter(self._retries, self.dead_letters, policy_lookup(retry_policy),
                                       group_id=group_id, park_after_s=park_after_s)
        self._refused = RefusedCommits()
        self._consumer.subscribe(self.topics, on_revoke=self._on_revoke, on_lost=self._on_lost)

    @property
    def idempotency(self) -> IdempotencyStore | None:
        """The store the consumer was given (None: it keeps no keys)."""
        return self._idempotency

    @property
    def handlers(self) -> dict[str, HandlerEntry]:
        """The event type → handler mapping, read at dispatch time (a handler may be swapped in it)."""
        return self._table.handlers

    # -- loop -----------------------------------------------------------------------------------
    def run(self, stop: threading.Event, *, poll_timeout: float = 0.5) -> None:
        """Consume until `stop` is set; the batch in hand is finished and committed, then close."""
        tune_gc_for_throughput()
        try:
            while not stop.is_set():
                self.poll_once(poll_timeout)
        finally:
            self.close()

    def poll_once(self, timeout: float = 0.5) -> bool:
        """Fetch and process one batch; True when at least one message was handled or dead-lettered."""
        self._retries.resume_due()
        wake = self._retries.next_wake()
        if wake is not None:
            timeout = max(0.0, min(timeout, wake - time.monotonic()))
        messages = self._fetch(timeout)
        if self._refused:  # the fetch served the rebalance's callbacks: commit what is still ours
            self._refused.retry(self._consumer)
        batch = []
        for msg in messages:
            error = msg.error()
            if error is None:
                batch.append(msg)
            elif error.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", error)
        self._maybe_cleanup()
        if not batch:
            return False
        try:
            return self._process_batch(batch) > 0
        except Exception as exc:  # noqa: BLE001 - e.g. the database or the group coordinator went away
            down = unreachable_database(exc, getattr(self._idempotency, "engine", None))
            if isinstance(exc, CoordinatorUnavailableError):
                down = str(exc)  # a broker went away: one line, the duplicates are skipped on redelivery
            if down is None:
                log.exception("batch of %d failed as a whole; rewinding to redeliver it", len(batch))
            else:  # one line per batch, no traceback: the database or the coordinator is named
                log.warning("batch of %d failed as a whole: %s; rewinding to redeliver it", len(batch), down)
            self._rewind(batch)
            time.sleep(1.0)
            return False

    def _fetch(self, timeout: float) -> list[Message]:
        """Up to `batch_size` messages, returning as soon as any is available.

        `consume(n, timeout)` would wait the whole timeout for n messages; instead take what is
        already fetched without blocking, else block for the first message only and then drain what
        arrived with it. Both calls read the consumer's one queue in order, so per-partition order
        is the broker's.
        """
        consume = self._consumer.consume
        messages = consume(self.batch_size, 0)
        if messages or timeout == 0:
            return messages
        messages = consume(1, timeout)
        if messages and self.batch_size > 1:
            messages += consume(self.batch_size - 1, 0)
        return messages

    def _rewind(self, batch: list[Message]) -> None:
        """Seek every partition of a failed batch back to its first message (nothing was committed
        past it), so the batch is delivered again instead of being skipped."""
        first: dict[TP, int] = {}
        for msg in batch:
            first.setdefault((msg.topic(), msg.partition()), msg.offset())
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except Exception as exc:  # noqa: BLE001 - revoked meanwhile: its new owner starts there anyway
                log.warning("cannot rewind %s[%d]: %s", topic, partition, exc)

    # -- one batch ------------------------------------------------------------------------------
    def _process_batch(self, messages: list[Message]) -> int:
        read = self._reader.read
        if self._idempotency is None:
            # No keys to claim up front: each record is read just before it is handled, in one pass,
            # while its objects are still in the CPU's caches (two passes over 500 cost ~4 us a record).
            return self._run_batch(messages, map(read, messages), BatchClaims(None))
        items = [read(msg) for msg in messages]
        claims = BatchClaims.claim(self._idempotency, items)
        with claims.held():
            return self._run_batch(messages, items, claims)

    def _run_batch(self, messages: list[Message], items: Iterable[InFlight], claims: BatchClaims) -> int:
        stopped: set[TP] = set()
        done: dict[TP, Message] = {}
        for item in items:
            tp = item.tp
            if (stopped and tp in stopped) or self._retries.paused(tp):
                continue  # behind a failed message: it is fetched again after the backoff
            if finish_record(item, claims, self._dispatcher, self._retries, self._failures) is _RETRY:
                stopped.add(tp)
            else:
                done[tp] = item.msg
        claims.settle()
        self._commit(done.values())
        METRICS.add("consumed", len(messages))
        METRICS.add("handled", len(claims.succeeded))
        return len(done)

    def health(self) -> ConsumerHealth:
        """Records parked since start and partitions held on one offset past `stuck_after_s` (for the
        worker heartbeat; safe from another thread)."""
        return ConsumerHealth(self.group_id, self._failures.parked, self._retries.stuck(self.stuck_after_s))

    # -- offsets and rebalancing ----------------------------------------------------------------
    def _commit(self, messages: Iterable[Message]) -> None:
        offsets = [TopicPartition(m.topic(), m.partition(), m.offset() + 1) for m in messages]
        if not offsets:
            return
        # A rebalance's refusal is one INFO line: partitions kept are committed again after the next
        # poll (`RefusedCommits`), those handed on are redelivered to their new owner, keys skip them.
        if commit(self._consumer, offsets=offsets):
            self._refused.committed(offsets)
        else:
            self._refused.refused(offsets)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Offsets are committed after every batch (a refused one is forgotten for the partitions
        leaving), so nothing is pending here: forget retry state."""
        self._forget(partitions)
        log.info("partitions revoked: %s", [(p.topic, p.partition) for p in partitions])

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """The group took the partitions without a revoke (this member was dropped)."""
        self._forget(partitions)
        log.info("partitions lost: %s", [(p.topic, p.partition) for p in partitions])

    def _forget(self, partitions: list[TopicPartition]) -> None:
        self._refused.forget(partitions)
        for partition in partitions:
            self._retries.forget((partition.topic, partition.partition))

    def _maybe_cleanup(self) -> None:
        if time.monotonic() - self._last_cleanup < self.cleanup_interval:
            return
        self._last_cleanup = time.monotonic()
        store = self._idempotency
        if store is None:
            return
        try:
            purged = store.purge_expired()
            if purged:
                log.info("purged %d expired idempotency keys", purged)
        except Exception as exc:  # noqa: BLE001 - cleanup is best effort; the next round tries again
            log.warning("idempotency cleanup failed: %s", exc)

    def committed_offset(self, topic: str, partition: int) -> int | None:
        [tp] = self._consumer.committed([TopicPartition(topic, partition)], timeout=10)
        return None if tp.offset == OFFSET_INVALID else tp.offset

    def close(self) -> None:
        """Leave the group (revoking commits nothing new: every batch was committed) and flush DLQ records."""
        if self._closed:
            return
        self._closed = True
        self._consumer.close()
        self.dlq_producer.flush(10)


def run_until_signalled(consumer: EventConsumer, *, poll_timeout: float = 0.5) -> None:
    """Run in the main thread until SIGTERM or SIGINT, then stop gracefully."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        consumer.run(stop, poll_timeout=poll_timeout)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
