"""Synchronous offset commits, and the one refusal that is not a failure: a rebalance's.

A member that handled a batch while the group rebalanced (it was slow, another replica joined or
left) has its commit refused with a group error — ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
REBALANCE_IN_PROGRESS, a fenced member. The records were handled and their idempotency keys stored
before the commit, so the partitions' new owner, resuming from the last commit, redelivers them and
skips their side effects. That is an ordinary rebalance: one INFO line, no traceback, no rewind.
Every other commit error still raises (the coordinator went away: the caller's retry path).
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from messaging.metrics import METRICS

__all__ = ["REBALANCE_REFUSALS", "commit", "refused_by_rebalance"]

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


def refused_by_rebalance(exc: BaseException) -> str | None:
    """The error's name when `exc` is a commit the group refused because of a rebalance, else None."""
    if not isinstance(exc, KafkaException) or not exc.args or not isinstance(exc.args[0], KafkaError):
        return None
    error: KafkaError = exc.args[0]
    return error.name() if error.code() in REBALANCE_REFUSALS else None


def commit(consumer: Consumer, *, offsets: list[TopicPartition] | None = None,
           message: Message | None = None) -> bool:
    """Commit `offsets` (or `message`'s offset + 1) synchronously. True when committed; False, with
    one INFO line, when a rebalance refused it; any other error raises."""
    try:
        if message is not None:
            consumer.commit(message=message, asynchronous=False)
        else:
            consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as exc:
        name = refused_by_rebalance(exc)
        if name is None:
            raise
        METRICS.add("commits_refused_by_rebalance")
        log.info("commit refused by a rebalance (%s); the partitions' new owner resumes from the last "
                 "commit", name)
        return False
    return True
