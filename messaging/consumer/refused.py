"""Offsets a rebalance refused to commit, committed again once the partitions prove to be still ours.

A rebalance moves only some partitions (see `messaging.groups`): a member whose commit
was refused mid-rebalance (STALE_MEMBER_EPOCH, ILLEGAL_GENERATION) often keeps the partitions it
had just handled. Its position is past those records, so they are not read again, and without a
second commit the group's offsets stay behind until the next record of each partition arrives — on
a quiet partition for good: lag that never drains, and a replay of the whole range (skipped by the
idempotency keys) the next time the partition moves. So the refused offsets are kept here, one per
partition, and committed again after the next poll, for the partitions still assigned; a partition
revoked or lost meanwhile is forgotten (its new owner resumes from the last commit, as before).

An offset kept here is never behind a commit that succeeded later: a successful commit of a
partition removes its entry, so a retry can only move the group's offset forward.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from messaging.commits import CoordinatorUnavailableError, commit
from messaging.consumer.inflight import TP

__all__ = ["RefusedCommits"]

log = logging.getLogger(__name__)

RETRY_EVERY_S = 0.5  # a rebalance under way refuses again: do not ask at every short poll
COORDINATOR_WAIT_S = 5.0


class RefusedCommits:
    def __init__(self) -> None:
        self._offsets: dict[TP, int] = {}
        self._next_try = 0.0

    def __bool__(self) -> bool:
        return bool(self._offsets)

    def refused(self, offsets: Iterable[TopicPartition]) -> None:
        """Keep `offsets`, whose commit a rebalance refused (later offsets replace earlier ones)."""
        for tp in offsets:
            key = (tp.topic, tp.partition)
            self._offsets[key] = max(tp.offset, self._offsets.get(key, -1))
        self._next_try = time.monotonic() + RETRY_EVERY_S

    def committed(self, offsets: Iterable[TopicPartition]) -> None:
        """A commit of `offsets` went through: their partitions have nothing left to commit again."""
        for tp in offsets:
            self._offsets.pop((tp.topic, tp.partition), None)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """The partitions left this member (revoked or lost): their new owner starts at the last commit."""
        for tp in partitions:
            self._offsets.pop((tp.topic, tp.partition), None)

    def retry(self, consumer: Consumer) -> None:
        """Commit the kept offsets of the partitions still assigned (after a poll served the
        rebalance's callbacks); refused again, they are kept for the next try."""
        if not self._offsets or time.monotonic() < self._next_try:
            return
        owned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        for key in [key for key in self._offsets if key not in owned]:
            del self._offsets[key]
        offsets = [TopicPartition(topic, partition, offset)
                   for (topic, partition), offset in self._offsets.items()]
        if not offsets:
            return
        try:
            done = commit(consumer, offsets=offsets, refusal_level=logging.DEBUG)
        except CoordinatorUnavailableError as exc:  # the coordinator moves: keep them, ask later
            log.warning("refused offsets not committed again yet: %s", exc)
            self._next_try = time.monotonic() + COORDINATOR_WAIT_S
            return
        except KafkaException as exc:  # nothing to gain from asking again: the next batch commits
            log.warning("refused offsets not committed again: %s", exc.args[0] if exc.args else exc)
            self._offsets.clear()
            return
        if done:
            self.committed(offsets)
            log.info("committed %d partition(s) again after a rebalance refused their commit", len(offsets))
        else:
            self._next_try = time.monotonic() + RETRY_EVERY_S
