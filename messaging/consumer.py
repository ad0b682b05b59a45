"""The at-least-once consumer runtime.

Per message: verify signature → decode + upcast → idempotency check → handler → store result →
commit that message's offset. Messages are fetched in batches; idempotency keys are claimed and
stored with one statement per batch, and the offsets committed after a batch are exactly those of
the last handled-or-dead-lettered message of each partition (`offset + 1`, as `commit(message=…)`
would) — never the consumer's position. So a crash at any point redelivers what was not finished.
The leases of the batch's acquired keys are renewed while it is processed (`IdempotencyStore.hold`),
so a slow handler keeps its claim however short the lease.

A failing message blocks only its own partition: the partition is paused and rewound to the
message, and resumed when its backoff (the event type's retry profile) has passed; other
partitions keep flowing. Retryable errors are retried until the profile is exhausted, then
dead-lettered; permanent ones are dead-lettered at once (see `messaging.errors`). A dead letter too
big for a DLQ record goes as a reference (`messaging.dlq_route`); when dead-lettering itself keeps
failing for `park_after_s` the record is parked in PostgreSQL and its offset committed — unless
PostgreSQL cannot take it either, then it stays in place. `health()` reports parked records and
partitions held on one offset for longer than `stuck_after_s` (the worker heartbeat). Revoked
partitions are committed and forgotten; `run` stops gracefully when its stop event is set
(`run_until_signalled` sets it on SIGTERM/SIGINT).
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, Message, TopicPartition
from opentelemetry import trace

import schemas
from core.logs import bind_event_ids
from core.tracing import parse_traceparent, recording, scope
from messaging.deadletter import DLQ_RETRIES, DeadLetter, strip_dlq_headers
from messaging.dlq_route import DeadLetterRoute
from messaging.errors import InconsistencyError, LeaseHeldError, ResourceBusyError, classify
from messaging.freshness import DEFAULT_MAX_EVENT_AGE_S, stale_reason
from messaging.gctune import tune_gc_for_throughput
from messaging.handlers import Handler, HandlerContext, HandlerEntry, HandlerSpec, specs_of
from messaging.health import DEFAULT_PARK_AFTER_S, DEFAULT_STUCK_AFTER_S, ConsumerHealth, StuckPartition
from messaging.idempotency import Claim, ClaimState, IdempotencyStore, KeyRequest, idempotency_key
from messaging.metrics import METRICS
from messaging.producer import EventProducer
from messaging.retry import PolicyLookup, RetryPolicy, policy_for

__all__ = ["EventConsumer", "Handler", "HandlerContext", "HandlerSpec", "run_until_signalled"]

log = logging.getLogger(__name__)

TP = tuple[str, int]


@dataclass
class _RetryState:
    """In-place retries of the message at `offset` of one partition."""

    offset: int
    failures: int = 0
    first_failure: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    last_failure: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    resume_at: float | None = None
    dlq_failing_since: float | None = None  # monotonic time dead-lettering it first failed


class _Item:
    """One fetched record on its way through the batch (a plain slotted class: one per record)."""

    __slots__ = ("check", "envelope", "error", "headers", "msg", "requests", "specs", "topic", "partition",
                 "offset", "trace_parent")

    def __init__(self, msg: Message, headers: list[tuple[str, bytes]]) -> None:
        self.msg = msg
        self.headers = headers
        self.topic: str = msg.topic()
        self.partition: int = msg.partition()
        self.offset: int = msg.offset()
        self.envelope: schemas.Envelope | None = None
        self.check: schemas.SignatureCheck | None = None
        self.error: Exception | None = None
        self.trace_parent: bytes | None = None  # the raw `traceparent` header value
        self.specs: list[HandlerSpec] = _NO_SPECS
        self.requests: list[KeyRequest] = _NO_REQUESTS


_NO_SPECS: list[HandlerSpec] = []
_NO_REQUESTS: list[KeyRequest] = []

# Headers our producer sets that can never be a signature header (whatever their case), so the
# signature check need not look at them; every other header still goes to `Keyring.verify`.
_NOT_SIGNATURE_HEADERS = frozenset({
    "traceparent", "tracestate", "content-type", "x-cf-event-type", "x-cf-event-id", "ce_specversion",
    "ce_id", "ce_type", "ce_source", "ce_time", "ce_dataschema", "ce_correlationid", "ce_tenantid",
    "ce_subject",
})


#: How often a record whose idempotency lease another consumer holds is tried again (a dead holder's
#: lease runs out within `IdempotencyStore.lease`; a live one finishes and the claim turns duplicate).
LEASE_POLL_S = 1.0

_SIGNATURE_HEADER = schemas.SIGNATURE_HEADER
_KEY_ID_HEADER = schemas.KEY_ID_HEADER
_SIGNED_AT_HEADER = schemas.SIGNED_AT_HEADER


class _Failed(Exception):
    def __init__(self, cause: BaseException, handler: str | None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.handler = handler


class EventConsumer:
    """One Kafka consumer in a group, dispatching each event type to its handler(s)."""

    def __init__(self, bootstrap_servers: str, *, group_id: str, topics: Iterable[str],
                 handlers: Mapping[str, HandlerEntry], keyring: schemas.Keyring,
                 signing_mode: schemas.SigningMode, dlq_producer: EventProducer,
                 extra_config: dict[str, object] | None = None,
                 handler_name: str | None = None,
                 idempotency: IdempotencyStore | None | Literal["auto"] = "auto",
                 retry_policy: RetryPolicy | PolicyLookup | None = None,
                 batch_size: int = 500, cleanup_interval: float = 300.0,
                 accept: Callable[[schemas.Envelope], bool] | None = None,
                 max_event_age_s: float = DEFAULT_MAX_EVENT_AGE_S,
                 dead_letters: DeadLetterRoute | None = None,
                 park_after_s: float = DEFAULT_PARK_AFTER_S,
                 stuck_after_s: float = DEFAULT_STUCK_AFTER_S) -> None:
        """`accept`, when given, decides after verification and decoding whether this consumer serves a
        record at all (tenant sharding): a record it refuses is acknowledged like a handled one, but
        without an idempotency key, a transaction or a handler call — as if another shard had it.
        A record signed more than `max_event_age_s` ago is dead-lettered as an Inconsistency (a replay).
        `dead_letters` routes records to the DLQ (default: through `dlq_producer`, references and parked
        records in the process settings' database)."""
        self.handlers: dict[str, HandlerEntry] = dict(handlers)
        self.max_event_age_s = max_event_age_s
        self.accept = accept
        self.keyring = keyring
        self.signing_mode = schemas.SigningMode(signing_mode)
        self.dlq_producer = dlq_producer
        self.dead_letters = dead_letters or DeadLetterRoute(dlq_producer)
        self.park_after_s = park_after_s
        self.stuck_after_s = stuck_after_s
        self._parked = 0
        self.topics = list(topics)
        self.group_id = group_id
        self.handler_name = handler_name or group_id
        self.batch_size = batch_size
        self.cleanup_interval = cleanup_interval
        if isinstance(retry_policy, RetryPolicy):
            fixed = retry_policy
            self._policy: PolicyLookup = lambda _event_type: fixed
        else:
            self._policy = retry_policy or policy_for
        self._idempotency = idempotency
        self._retries: dict[TP, _RetryState] = {}
        self._specs: dict[str, tuple[HandlerEntry, list[HandlerSpec]]] = {}
        self._last_cleanup = time.monotonic()
        self._closed = False
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap_servers,
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            "log_level": 3,
            # A resumed partition is fetched within ~0.1 s, so retry delays stay close to the profile.
            "fetch.wait.max.ms": 100,
            **(extra_config or {}),
        })
        self._consumer.subscribe(self.topics, on_revoke=self._on_revoke, on_lost=self._on_revoke)

    # -- idempotency ----------------------------------------------------------------------------
    @property
    def idempotency(self) -> IdempotencyStore | None:
        """The store, built from the process settings on first use when left on "auto"."""
        if self._idempotency == "auto":
            from core.db import engine_for
            from core.settings import get_settings

            self._idempotency = IdempotencyStore(engine_for(get_settings().dsn))
        return self._idempotency

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
        self._resume_due()
        wake = [s.resume_at for s in self._retries.values() if s.resume_at is not None]
        if wake:
            timeout = max(0.0, min(timeout, min(wake) - time.monotonic()))
        messages = self._fetch(timeout)
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
        except Exception:  # noqa: BLE001 - e.g. the database or the group coordinator went away
            log.exception("batch of %d failed as a whole; rewinding to redeliver it", len(batch))
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
        store = self.idempotency  # resolved before reading: `_read` builds keys only for a store
        items = [self._read(msg) for msg in messages]
        claims: dict[str, Claim] = {}
        claim_error: Exception | None = None
        leased = [] if store is None else [
            request for item in items for spec, request in zip(item.specs, item.requests, strict=True)
            if not spec.transactional]
        if store is not None and leased:
            try:
                claims = store.claim(leased)
            except Exception as exc:  # noqa: BLE001 - database away: every message retries in place
                claim_error = exc
        acquired = [key for key, claim in claims.items() if claim.state is ClaimState.ACQUIRED]
        if not acquired:
            return self._run_batch(messages, items, store, claims, claim_error, acquired)
        assert store is not None
        store.hold(acquired)  # leases renewed while the handlers run, however long they take
        try:
            return self._run_batch(messages, items, store, claims, claim_error, acquired)
        finally:
            store.drop(acquired)

    def _run_batch(self, messages: list[Message], items: list[_Item], store: IdempotencyStore | None,
                   claims: dict[str, Claim], claim_error: Exception | None, acquired: list[str]) -> int:
        stopped: set[TP] = set()
        done: dict[TP, Message] = {}
        succeeded: dict[str, Any] = {}
        failed: dict[str, str] = {}
        for item in items:
            tp = (item.topic, item.partition)
            paused = self._retries.get(tp)
            if tp in stopped or (paused is not None and paused.resume_at is not None):
                continue  # behind a failed message: it is fetched again after the backoff
            served = item.error is not None or item.specs  # else no handler here, or `accept` refused it
            try:
                if served and claim_error is not None:
                    raise _Failed(claim_error, None)
                if served:
                    self._handle(item, claims, succeeded, failed)
            except _Failed as failure:
                if self._on_failure(item, failure):
                    done[tp] = item.msg
                else:
                    stopped.add(tp)
                continue
            state = self._retries.get(tp)
            if state is not None and state.offset == item.offset:
                del self._retries[tp]
            done[tp] = item.msg
        if store is not None:
            store.complete(succeeded)
            store.fail(failed)
            store.release(set(acquired) - succeeded.keys() - failed.keys())
        self._commit(done.values())
        METRICS.add("consumed", len(messages))
        METRICS.add("handled", len(succeeded))
        return len(done)

    def _read(self, msg: Message) -> _Item:
        headers = msg.headers() or []  # a fresh list per call
        item = _Item(msg, headers)
        value = msg.value() or b""
        # One pass over the headers finds the signature, the key id, the signed time and the trace parent.
        signatures: list[str] = []
        key_ids: list[str] = []
        stamps: list[str] = []
        for name, raw in headers:
            if name in _NOT_SIGNATURE_HEADERS:
                if name == "traceparent":
                    item.trace_parent = raw
                continue
            if raw is None:
                continue
            lowered = name.lower()
            if lowered == _SIGNATURE_HEADER:
                signatures.append(raw.decode("ascii", "replace").strip())
            elif lowered == _KEY_ID_HEADER:
                key_ids.append(raw.decode("ascii", "replace").strip())
            elif lowered == _SIGNED_AT_HEADER:
                stamps.append(raw.decode("ascii", "replace").strip())
        try:
            item.check = check = self.keyring.verify_found(value, signatures, key_ids, stamps)
            if not check.ok:
                schemas.enforce_signature(check, self.signing_mode, logger=log,
                                          context=f"{item.topic}/{item.partition}/{item.offset}")
            item.envelope = envelope = schemas.decode(value)
            # Who signed it must be who may say it (the signed `producer` included); the policy, with
            # the record's position for its message, runs only for a violation (not per record).
            if check.ok and schemas.signer_violation(envelope, check) is not None:
                schemas.authorize_signer(envelope, check, self.signing_mode, logger=log,
                                         context=f"{item.topic}/{item.partition}/{item.offset}")
        except schemas.ContractError as exc:
            if self.accept is not None and self._served_elsewhere(value, item.envelope):
                return item  # another shard's record: that shard dead-letters it
            item.error = exc
            return item
        except Exception as exc:  # noqa: BLE001 - a record must never stall the batch: classify it
            item.error = exc
            return item
        stale = stale_reason(envelope, check, self.max_event_age_s)
        if stale is not None:
            item.error = InconsistencyError(stale)
            return item
        if self.accept is not None and not self.accept(envelope):
            return item  # not ours: no specs, so no key, no handler; committed with the batch
        item.specs = specs = self._specs_for(envelope.event_type)
        if self._idempotency is not None:  # keys only matter when a store records them
            event_id, correlation_id = str(envelope.event_id), str(envelope.correlation_id)
            item.requests = [KeyRequest(idempotency_key(event_id, correlation_id, spec.name or ""),
                                        spec.name or "", envelope.event_id, envelope.correlation_id)
                             for spec in specs]
        return item

    def _served_elsewhere(self, value: bytes, envelope: schemas.Envelope | None) -> bool:
        """A tenant-scoped consumer leaves a record it cannot trust to the shard of the tenant it names
        (which dead-letters it), so shards and test runs sharing topics do not each dead-letter every
        bad record of everybody else's history. Undecodable records stay this consumer's."""
        assert self.accept is not None
        if envelope is None:
            try:
                envelope = schemas.decode(value)
            except schemas.ContractError:
                return False
        return not self.accept(envelope)

    def _specs_for(self, event_type: str) -> list[HandlerSpec]:
        """`specs_of` the current entry, reused while the mapping holds the same (immutable) entry."""
        entry = self.handlers.get(event_type)
        cached = self._specs.get(event_type)
        if cached is not None and cached[0] is entry:
            return cached[1]
        specs = specs_of(entry, self.handler_name)
        if not isinstance(entry, list):  # a list may be changed in place: read it every time
            self._specs[event_type] = (entry, specs)
        return specs

    def _handle(self, item: _Item, claims: dict[str, Claim], succeeded: dict[str, Any],
                failed: dict[str, str]) -> None:
        envelope = item.envelope
        attributes = {"messaging.system": "kafka", "messaging.destination.name": item.topic,
                      "messaging.kafka.partition": item.partition,
                      "messaging.kafka.offset": item.offset} if recording() else None
        with scope(f"consume {item.topic}", parent=parse_traceparent(item.trace_parent),
                   kind=trace.SpanKind.CONSUMER, attributes=attributes,
                   tracer_name="cloud_factory.consumer") as consume_span, \
                bind_event_ids(envelope.correlation_id if envelope else None,
                               envelope.event_id if envelope else None,
                               envelope.tenant_id if envelope else None):
            if item.error is not None or envelope is None:
                raise _Failed(item.error or ValueError("undecodable record"), None)
            state = self._retries.get((item.topic, item.partition))
            attempt = state.failures + 1 if state is not None and state.offset == item.offset else 1
            requests = item.requests or [None] * len(item.specs)
            for spec, request in zip(item.specs, requests, strict=True):
                name = spec.name or self.handler_name
                key = request.key if request is not None else None
                try:
                    if spec.transactional and request is not None and self.idempotency is not None:
                        self._run_transactional(spec, request, envelope, item, attempt, consume_span)
                        continue
                    claim = claims.get(key) if key is not None else None
                    if claim is not None and claim.state is ClaimState.DUPLICATE:
                        log.info("duplicate %s for handler %s: skipped (cached result kept)",
                                 envelope.event_id, name)
                        continue
                    if claim is not None and claim.state is ClaimState.BUSY:
                        raise LeaseHeldError(f"handler {name}: another consumer holds the lease")
                    result = self._call(spec, envelope, item, attempt, key, None, consume_span)
                    if key is not None:
                        succeeded[key] = result
                except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes
                    if key is not None and not isinstance(exc, ResourceBusyError):
                        failed[key] = f"{type(exc).__name__}: {exc}"[:1000]
                    raise _Failed(exc, name) from exc

    def _run_transactional(self, spec: HandlerSpec, request: KeyRequest, envelope: schemas.Envelope,
                           item: _Item, attempt: int, consume_span: trace.Span) -> None:
        store = self.idempotency
        assert store is not None
        with store.engine.begin() as conn:
            claim = store.claim([request], final=True, conn=conn)[request.key]
            if claim.state is ClaimState.DUPLICATE:
                log.info("duplicate %s for handler %s: skipped", envelope.event_id, spec.name)
                return
            if claim.state is ClaimState.BUSY:
                raise LeaseHeldError(f"handler {spec.name}: another consumer holds the lease")
            result = self._call(spec, envelope, item, attempt, request.key, conn, consume_span)
            if result is not None:
                store.complete({request.key: result}, conn=conn)

    def _call(self, spec: HandlerSpec, envelope: schemas.Envelope, item: _Item, attempt: int, key: str | None,
              conn: Any, consume_span: trace.Span) -> Any:
        assert item.check is not None
        if not recording():
            # Ids only: nothing is exported, so the handler runs in the consume span itself instead of
            # a child nobody will ever see (its ids are what the logs and outgoing events carry).
            return spec.handler(envelope, self._context(consume_span, spec, item, attempt, key, conn))
        attributes = {"cloudfactory.handler": spec.name or "",
                      "cloudfactory.event_id": str(envelope.event_id)}
        with scope(f"handle {envelope.event_type}", attributes=attributes,
                   tracer_name="cloud_factory.consumer") as span:
            return spec.handler(envelope, self._context(span, spec, item, attempt, key, conn))

    @staticmethod
    def _context(span: trace.Span, spec: HandlerSpec, item: _Item, attempt: int, key: str | None,
                 conn: Any) -> HandlerContext:
        ids = span.get_span_context()
        valid = ids.is_valid
        assert item.check is not None
        return HandlerContext.fast(
            item.topic, item.partition, item.offset, item.headers, item.check,
            f"{ids.trace_id:032x}" if valid else None, f"{ids.span_id:016x}" if valid else None,
            spec.name or "", attempt, key, conn,
        )

    # -- failure routing ------------------------------------------------------------------------
    def _on_failure(self, item: _Item, failure: _Failed) -> bool:
        """Retry in place (False: partition stopped) or dead-letter (True: offset may be committed)."""
        msg, exc = item.msg, failure.cause
        tp = (msg.topic(), msg.partition())
        error_class = classify(exc)
        state = self._retries.get(tp)
        if state is None or state.offset != msg.offset():
            state = self._retries[tp] = _RetryState(msg.offset())
        if isinstance(exc, LeaseHeldError):  # someone else's work in progress, not a failure here
            self._retry_later(msg, state, LEASE_POLL_S)
            log.info("%s: %s; asking again in %.1fs", _where(msg), exc, LEASE_POLL_S)
            return False
        state.failures += 1
        state.last_failure = dt.datetime.now(dt.UTC)
        event_type = item.envelope.event_type if item.envelope else None
        policy = self._policy(event_type)
        if error_class.retryable and policy.allows(state.failures):
            self._retry_later(msg, state, policy.delay(state.failures))
            log.warning("%s failed (%s, %s: %s); retry %d/%d in %.2fs", _where(msg), error_class.value,
                        type(exc).__name__, exc, state.failures, policy.retries, policy.delay(state.failures))
            return False
        letter = DeadLetter(
            original_topic=msg.topic(), original_partition=msg.partition(), original_offset=msg.offset(),
            key=msg.key(), value=msg.value() or b"", headers=strip_dlq_headers(item.headers),
            error_class=error_class, reason=str(exc) or type(exc).__name__, exception=type(exc).__name__,
            attempts=state.failures, first_failure=state.first_failure, last_failure=state.last_failure,
            handler=failure.handler, group=self.group_id, dlq_retries=_dlq_retries(item.headers),
        )
        try:
            delivery, sent = self.dead_letters.dead_letter(letter)
        except Exception as dlq_error:  # noqa: BLE001 - refused, no broker, or no database for a reference
            return self._dead_letter_failed(msg, state, letter, dlq_error,
                                            policy.delay(min(state.failures, policy.retries or 1)))
        del self._retries[tp]
        METRICS.add("dead_lettered", topic=msg.topic(), error_class=error_class.value)
        log.warning("dead-lettered %s to %s (%s after %d attempt(s)): %s%s%s", _where(msg), letter.topic,
                    error_class.value, letter.attempts, letter.reason,
                    f" [as a reference: its {sent.value_size} bytes are kept in PostgreSQL]"
                    if sent.is_reference else "", " [spooled]" if delivery.spooled else "")
        return True

    def _dead_letter_failed(self, msg: Message, state: _RetryState, letter: DeadLetter, error: Exception,
                            delay: float) -> bool:
        """Retry in place (False) — or, once dead-lettering has kept failing for `park_after_s`, park the
        record (True: its offset may be committed). A record PostgreSQL cannot take either stays."""
        now = time.monotonic()
        if state.dlq_failing_since is None:
            state.dlq_failing_since = now
        failing_for = now - state.dlq_failing_since
        if failing_for < self.park_after_s:
            log.error("cannot dead-letter %s (%s); retrying it in place, parking it if this lasts %.0fs more",
                      _where(msg), error, self.park_after_s - failing_for)
            self._retry_later(msg, state, delay)
            return False
        try:
            row = self.dead_letters.park(letter, dlq_error=f"{type(error).__name__}: {error}")
        except Exception as park_error:  # noqa: BLE001 - kept in place until somewhere holds it
            log.error("cannot park %s either (%s: %s) after %.0fs of failed dead-lettering (%s); retrying it "
                      "in place — nothing behind it on this partition moves until it is dead-lettered or "
                      "parked", _where(msg), type(park_error).__name__, park_error, failing_for, error)
            self._retry_later(msg, state, delay)
            return False
        del self._retries[(msg.topic(), msg.partition())]
        self._parked += 1
        METRICS.add("parked", topic=msg.topic())
        log.error("parked %s in PostgreSQL (messaging.parked row %d) after %.0fs of failed dead-lettering "
                  "(%s); the partition moves on — see `cloud-factory dlq parked`", _where(msg), row,
                  failing_for, error)
        return True

    def health(self) -> ConsumerHealth:
        """Records parked since start and partitions held on one offset past `stuck_after_s` (for the
        worker heartbeat; safe from another thread: it reads a snapshot of the retry states)."""
        now = time.time()
        stuck = []
        for (topic, partition), state in list(self._retries.items()):
            since = state.first_failure.timestamp()
            if now - since > self.stuck_after_s:
                stuck.append(StuckPartition(topic, partition, state.offset, since))
        return ConsumerHealth(self.group_id, self._parked, tuple(stuck))

    def _retry_later(self, msg: Message, state: _RetryState, delay: float) -> None:
        partition = TopicPartition(msg.topic(), msg.partition())
        self._consumer.pause([partition])
        self._consumer.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset()))
        state.resume_at = time.monotonic() + delay
        METRICS.add("retries")

    def _resume_due(self) -> None:
        now = time.monotonic()
        due = [tp for tp, state in self._retries.items()
               if state.resume_at is not None and state.resume_at <= now]
        if due:
            self._consumer.resume([TopicPartition(topic, partition) for topic, partition in due])
            for tp in due:
                self._retries[tp].resume_at = None

    # -- offsets and rebalancing ----------------------------------------------------------------
    def _commit(self, messages: Iterable[Message]) -> None:
        offsets = [TopicPartition(m.topic(), m.partition(), m.offset() + 1) for m in messages]
        if offsets:
            self._consumer.commit(offsets=offsets, asynchronous=False)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Offsets are committed after every batch, so nothing is pending here: forget retry state."""
        for partition in partitions:
            self._retries.pop((partition.topic, partition.partition), None)
        log.info("partitions revoked: %s", [(p.topic, p.partition) for p in partitions])

    def _maybe_cleanup(self) -> None:
        if time.monotonic() - self._last_cleanup < self.cleanup_interval:
            return
        self._last_cleanup = time.monotonic()
        store = self.idempotency
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


def _where(msg: Message) -> str:
    return f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"


def _dlq_retries(headers: list[tuple[str, bytes]]) -> int:
    for key, value in reversed(headers):
        if key == DLQ_RETRIES and value:
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def run_until_signalled(consumer: EventConsumer, *, poll_timeout: float = 0.5) -> None:
    """Run in the main thread until SIGTERM or SIGINT, then stop gracefully."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        consumer.run(stop, poll_timeout=poll_timeout)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


