"""Synchronous offset commits, and the one refusal that is not a failure: a rebalance's.

A member that handled a batch while the group rebalanced (it was slow, another replica joined or
left) has its commit refused with a group error — ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
REBALANCE_IN_PROGRESS, a fenced member. The records were handled and their idempotency keys stored
before the commit, so the partitions' new owner, resuming from the last commit, redelivers them and
skips their side effects. That is an ordinary rebalance: one INFO line, no traceback, no rewind.

A broker going away moves the group's coordinator: for a few seconds commits fail with
NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS or a timeout while the client finds the new one. Such
a commit is asked again (`COMMIT_ATTEMPTS`, backing off); only when the coordinator stays away does
it raise `CoordinatorUnavailableError`, a one-line error the caller logs without a traceback before
its retry path (rewind, redeliver, duplicates skipped). Every other commit error raises as it is.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from messaging.metrics import METRICS

__all__ = ["COMMIT_ATTEMPTS", "COORDINATOR_MOVES", "REBALANCE_REFUSALS", "CoordinatorUnavailableError",
           "commit", "refused_by_rebalance"]

log = logging.getLogger(__name__)

#: Commit errors meaning "this member no longer owns these partitions in this generation".
REBALANCE_REFUSALS = frozenset({
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.FENCED_INSTANCE_ID,
    KafkaError.STALE_MEMBER_EPOCH,
    KafkaError.FENCED_MEMBER_EPOCH,
    KafkaError._ASSIGNMENT_LOST,
})


#: Commit errors of a coordinator that moved, is loading its state or did not answer in time.
COORDINATOR_MOVES = frozenset({
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION,
    KafkaError._WAIT_COORD,
    KafkaError._TRANSPORT,
    KafkaError._TIMED_OUT,
})

#: Tries of one commit while its coordinator moves (backing off 0.25 s, 0.5 s, 1 s, 2 s: ~4 s in all).
COMMIT_ATTEMPTS = 5


class CoordinatorUnavailableError(RuntimeError):
    """The group's coordinator did not take a commit in `COMMIT_ATTEMPTS` tries (one line)."""


def _code(exc: KafkaException) -> int | None:
    error = exc.args[0] if exc.args else None
    return error.code() if isinstance(error, KafkaError) else None


def refused_by_rebalance(exc: BaseException) -> str | None:
    """The error's name when `exc` is a commit the group refused because of a rebalance, else None."""
    if not isinstance(exc, KafkaException) or not exc.args or not isinstance(exc.args[0], KafkaError):
        return None
    error: KafkaError = exc.args[0]
    return error.name() if error.code() in REBALANCE_REFUSALS else None


def commit(consumer: Consumer, *, offsets: list[TopicPartition] | None = None,
           message: Message | None = None, refusal_level: int = logging.INFO) -> bool:
    """Commit `offsets` (or `message`'s offset + 1) synchronously. True when committed; False, with
    one line at `refusal_level` (INFO), when a rebalance refused it; `CoordinatorUnavailableError`
    when the coordinator stayed away through every attempt; any other error raises."""
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            if message is not None:
                consumer.commit(message=message, asynchronous=False)
            else:
                consumer.commit(offsets=offsets, asynchronous=False)
            return True
        except KafkaException as exc:
            name = refused_by_rebalance(exc)
            if name is not None:
                METRICS.add("commits_refused_by_rebalance")
                log.log(refusal_level, "commit refused by a rebalance (%s); the partitions' new owner "
                        "resumes from the last commit", name)
                return False
            if _code(exc) not in COORDINATOR_MOVES:
                raise
            if attempt == COMMIT_ATTEMPTS:
                raise CoordinatorUnavailableError(
                    f"the group coordinator did not take the commit in {COMMIT_ATTEMPTS} tries "
                    f"({exc.args[0].name()})") from None
            METRICS.add("commits_asked_again")
            time.sleep(0.25 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
