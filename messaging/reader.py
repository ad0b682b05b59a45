"""The one way to read Kafka outside a consumer group's flow: a range of each partition, to its
end, within a deadline.

Tools that look at records rather than process them — the DLQ commands, `order show`, the demo, the
tests — read a fixed range: from a start (the beginning, an offset, the last n records, a moment)
up to the end the partition had when the range was taken. So an answer never depends on a fixed
wait, and a reader never commits anything (its group id is its own, offsets are assigned).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from messaging.client_logs import client_config

__all__ = ["PartitionRange", "ReadTimeout", "TopicReader"]

_T = TypeVar("_T")

# What a partition answers while its leader is being elected (a fresh topic, a restarted broker), or
# while a fresh topic's partition is not yet in the client's metadata (`_UNKNOWN_PARTITION`, seen under
# load right after the topic was created).
_NOT_READY = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                        KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION,
                        KafkaError._TIMED_OUT})


@dataclass(frozen=True, slots=True)
class PartitionRange:
    """Offsets `start` up to (not including) `end` of one partition."""

    topic: str
    partition: int
    start: int
    end: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.start}..{self.end}"


class ReadTimeout(TimeoutError):
    """The deadline passed before every range was read to its end; `left` names what was not."""

    def __init__(self, left: Iterable[PartitionRange]) -> None:
        self.left = list(left)
        super().__init__(f"timed out reading {', '.join(map(str, self.left))}")


class TopicReader:
    """A group-less reader (use it as a context manager): find the ranges, then `read` them."""

    def __init__(self, bootstrap_servers: str, *, group_prefix: str = "reader",
                 config: Mapping[str, object] | None = None) -> None:
        self._consumer = Consumer({"bootstrap.servers": bootstrap_servers,
                                   "group.id": f"{group_prefix}-{uuid.uuid4().hex}",
                                   "enable.auto.commit": False, "log_level": 3,
                                   **client_config(f"{group_prefix}-reader"), **(config or {})})

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._consumer.close()

    # -- what there is --------------------------------------------------------------------------
    def topic_names(self) -> list[str]:
        return list(self._consumer.list_topics(timeout=10).topics)

    def partitions(self, topic: str, *, wait_s: float = 0.0) -> list[int]:
        """The partitions of `topic`, asking again for up to `wait_s` (a fresh topic's metadata may lag
        its creation briefly); LookupError naming the topic when the broker does not know it."""
        deadline = time.monotonic() + wait_s
        while True:
            metadata = self._consumer.list_topics(topic, timeout=10).topics.get(topic)
            if metadata is not None and metadata.error is None and metadata.partitions:
                return sorted(metadata.partitions)
            if time.monotonic() >= deadline:
                error = metadata.error if metadata is not None else "absent from the metadata"
                raise LookupError(f"topic {topic} does not exist ({error})")
            time.sleep(0.2)

    def watermarks(self, topic: str, partition: int, *, wait_s: float = 10.0) -> tuple[int, int]:
        """(low, high): the first offset still held and the next offset to be written. A fresh topic's
        partition may have no leader yet: asked again for up to `wait_s`."""
        where = TopicPartition(topic, partition)
        low, high = _until_ready(lambda: self._consumer.get_watermark_offsets(where, timeout=10), wait_s)
        return int(low), int(high)

    def offsets_at(self, topic: str, partitions: Iterable[int], since_ms: int, *,
                   wait_s: float = 10.0) -> dict[int, int]:
        """Partition → the first offset at or after `since_ms`, for the partitions holding such a
        record. Right after a broker restart a partition may briefly have no leader: asked again
        for up to `wait_s`."""
        wanted = [TopicPartition(topic, p, since_ms) for p in partitions]
        if not wanted:
            return {}
        found = _until_ready(
            lambda: self._checked(self._consumer.offsets_for_times(wanted, timeout=10)), wait_s)
        return {tp.partition: tp.offset for tp in found if tp.offset >= 0}

    @staticmethod
    def _checked(found: list[TopicPartition]) -> list[TopicPartition]:
        """The answer itself, or the first partition's error raised as the call's would be."""
        for tp in found:
            if tp.error is not None:
                raise KafkaException(tp.error)
        return found

    # -- ranges ---------------------------------------------------------------------------------
    def to_end(self, topic: str, *, partitions: Iterable[int] | None = None, last: int | None = None,
               since_ms: int | None = None, after: Mapping[int, int] | None = None) -> list[PartitionRange]:
        """Each partition's non-empty range up to its current end: from its beginning, or only its
        `last` records, or from the first record at or after `since_ms` (epoch milliseconds), or
        from after the offsets in `after` (partition → last offset already seen)."""
        numbers = list(partitions) if partitions is not None else self.partitions(topic)
        starts: dict[int, int] = {}
        if since_ms is not None:
            starts = self.offsets_at(topic, numbers, since_ms)
            numbers = [p for p in numbers if p in starts]
        ranges = []
        for partition in numbers:
            low, high = self.watermarks(topic, partition)
            start = low
            if partition in starts:
                start = max(low, starts[partition])
            if last is not None:
                start = max(start, high - last)
            if after is not None and partition in after:
                start = max(start, after[partition] + 1)
            if high > start:
                ranges.append(PartitionRange(topic, partition, start, high))
        return ranges

    # -- reading --------------------------------------------------------------------------------
    def read(self, ranges: Iterable[PartitionRange], *, timeout_s: float = 30.0) -> Iterator[Message]:
        """The records of `ranges`, partition order kept; `ReadTimeout` when `timeout_s` passes first."""
        left = {(r.topic, r.partition): r for r in ranges if r.end > r.start}
        if not left:
            return
        self._consumer.assign([TopicPartition(r.topic, r.partition, r.start) for r in left.values()])
        deadline = time.monotonic() + timeout_s
        try:
            while left:
                if time.monotonic() >= deadline:
                    raise ReadTimeout(left.values())
                batch = self._consumer.consume(500, min(0.5, max(0.0, deadline - time.monotonic())))
                for msg in batch:
                    if msg.error() is not None:
                        continue
                    key = (msg.topic(), msg.partition())
                    wanted = left.get(key)
                    if wanted is None or not wanted.start <= msg.offset() < wanted.end:
                        continue
                    yield msg
                    if msg.offset() >= wanted.end - 1:
                        del left[key]
                if not batch:
                    self._drop_passed(left)
        finally:
            self._consumer.unassign()

    def read_one(self, topic: str, partition: int, offset: int, *, timeout_s: float = 30.0) -> Message:
        """The record at `offset`; LookupError when the partition does not hold it, `ReadTimeout`
        when it cannot be read within `timeout_s`."""
        low, high = self.watermarks(topic, partition)
        if not low <= offset < high:
            raise LookupError(f"{topic}[{partition}] holds offsets {low}..{high - 1}, not {offset}")
        for msg in self.read([PartitionRange(topic, partition, offset, offset + 1)], timeout_s=timeout_s):
            return msg
        raise LookupError(f"no record at {topic}[{partition}]@{offset}")  # a transaction marker, say

    def _drop_passed(self, left: dict[tuple[str, int], PartitionRange]) -> None:
        """Ranges whose partition the reader has moved past (their last offsets were no records,
        e.g. transaction markers) are done although their last record never came."""
        positions = self._consumer.position([TopicPartition(r.topic, r.partition) for r in left.values()])
        for tp in positions:
            wanted = left.get((tp.topic, tp.partition))
            if wanted is not None and tp.offset >= wanted.end:
                del left[(tp.topic, tp.partition)]


def _until_ready(call: Callable[[], _T], wait_s: float) -> _T:
    """`call()`, asked again every 0.2 s for up to `wait_s` while the partition is not ready."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return call()
        except KafkaException as exc:
            if exc.args[0].code() not in _NOT_READY or time.monotonic() >= deadline:
                raise
        time.sleep(0.2)
