"""Where a failed record goes: retried in place, dead-lettered, or — when dead-lettering itself keeps
failing for the park window — parked in PostgreSQL.

Retryable errors (see `messaging.errors`) are retried until the event type's retry profile is
exhausted, then dead-lettered; permanent ones are dead-lettered at once. A record whose idempotency
lease another consumer holds is asked for again every `LEASE_POLL_S`, and one whose handler cannot
reach the database every `DATABASE_POLL_S`, both without spending the profile.
*How* a record leaves its partition (whole, as a reference, parked) is `messaging.dlq.route`'s job.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from confluent_kafka import Message

from core.db import unreachable_database
from messaging.consumer.dispatch import HandlerFailed
from messaging.consumer.inflight import InFlight, position_of
from messaging.consumer.retries import InPlaceRetries, RetryState
from messaging.dlq.letter import DLQ_RETRIES, DeadLetter, strip_dlq_headers
from messaging.dlq.route import DeadLetterRoute
from messaging.errors import LeaseHeldError, classify
from messaging.metrics import METRICS
from messaging.retry import PolicyLookup

__all__ = ["DATABASE_POLL_S", "LEASE_POLL_S", "FailureRouter"]

log = logging.getLogger(__name__)

#: How often a record is tried again while its handler cannot reach the database: an outage of the
#: service's own database spends no retry (it would dead-letter every record in flight), the record
#: waits in place until the database answers.
DATABASE_POLL_S = 2.0

#: How often a record whose idempotency lease another consumer holds is tried again (a dead holder's
#: lease runs out within `IdempotencyStore.lease`; a live one finishes and the claim turns duplicate).
LEASE_POLL_S = 1.0


class FailureRouter:
    """Routes the failures of one consumer group's records; counts what it parked."""

    def __init__(self, retries: InPlaceRetries, dead_letters: DeadLetterRoute, policy: PolicyLookup, *,
                 group_id: str, park_after_s: float) -> None:
        self.retries = retries
        self.dead_letters = dead_letters
        self.policy = policy
        self.group_id = group_id
        self.park_after_s = park_after_s
        self.parked = 0

    def route(self, item: InFlight, failure: HandlerFailed) -> bool:
        """Retry in place (False: partition stopped) or dead-letter (True: offset may be committed)."""
        msg, exc = item.msg, failure.cause
        error_class = classify(exc)
        state = self.retries.state_of(msg)
        if isinstance(exc, LeaseHeldError):  # someone else's work in progress, not a failure here
            self.retries.retry_later(msg, state, LEASE_POLL_S)
            log.info("%s: %s; asking again in %.1fs", position_of(msg), exc, LEASE_POLL_S)
            return False
        down = unreachable_database(exc)
        if down is not None:  # the service's own database is away: no fault of the record's
            self.retries.retry_later(msg, state, DATABASE_POLL_S)
            log.warning("%s: %s; trying again in %.1fs (no retry spent)", position_of(msg), down,
                        DATABASE_POLL_S)
            return False
        state.failures += 1
        state.last_failure = dt.datetime.now(dt.UTC)
        event_type = item.envelope.event_type if item.envelope else None
        policy = self.policy(event_type)
        if error_class.retryable and policy.allows(state.failures):
            self.retries.retry_later(msg, state, policy.delay(state.failures))
            log.warning("%s failed (%s, %s: %s); retry %d/%d in %.2fs", position_of(msg), error_class.value,
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
            return self._dead_letter_failed(item, state, letter, dlq_error,
                                            policy.delay(min(state.failures, policy.retries or 1)))
        self.retries.handled(item)
        METRICS.add("dead_lettered", topic=msg.topic(), error_class=error_class.value)
        log.warning("dead-lettered %s to %s (%s after %d attempt(s)): %s%s%s", position_of(msg), letter.topic,
                    error_class.value, letter.attempts, letter.reason,
                    f" [as a reference: its {sent.value_size} bytes are kept in PostgreSQL]"
                    if sent.is_reference else "", " [spooled]" if delivery.spooled else "")
        return True

    def _dead_letter_failed(self, item: InFlight, state: RetryState, letter: DeadLetter, error: Exception,
                            delay: float) -> bool:
        """Retry in place (False) — or, once dead-lettering has kept failing for `park_after_s`, park the
        record (True: its offset may be committed). A record PostgreSQL cannot take either stays."""
        msg: Message = item.msg
        now = time.monotonic()
        if state.dlq_failing_since is None:
            state.dlq_failing_since = now
        failing_for = now - state.dlq_failing_since
        if failing_for < self.park_after_s:
            log.error("cannot dead-letter %s (%s); retrying it in place, parking it if this lasts %.0fs more",
                      position_of(msg), error, self.park_after_s - failing_for)
            self.retries.retry_later(msg, state, delay)
            return False
        try:
            row = self.dead_letters.park(letter, dlq_error=f"{type(error).__name__}: {error}")
        except Exception as park_error:  # noqa: BLE001 - kept in place until somewhere holds it
            log.error("cannot park %s either (%s: %s) after %.0fs of failed dead-lettering (%s); retrying it "
                      "in place — nothing behind it on this partition moves until it is dead-lettered or "
                      "parked", position_of(msg), type(park_error).__name__, park_error, failing_for, error)
            self.retries.retry_later(msg, state, delay)
            return False
        self.retries.handled(item)
        self.parked += 1
        METRICS.add("parked", topic=msg.topic())
        log.error("parked %s in PostgreSQL (messaging.parked row %d) after %.0fs of failed dead-lettering "
                  "(%s); the partition moves on — see `cloud-factory dlq parked`", position_of(msg), row,
                  failing_for, error)
        return True


def _dlq_retries(headers: list[tuple[str, bytes]]) -> int:
    """How often the DLQ handler already re-published this record (`x-cf-dlq-retries`)."""
    for key, value in reversed(headers):
        if key == DLQ_RETRIES and value:
            try:
                return int(value)
            except ValueError:
                return 0
    return 0
