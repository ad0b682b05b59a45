"""What a consumer tells its worker's heartbeat: records it parked and partitions that stopped moving.

A partition held on one offset (its record failing and retried in place) past the stuck threshold,
or any parked record, makes the consumer — and so its worker in `cloud-factory stack status` —
*degraded*: nothing is lost, but a person should look (`cloud-factory dlq parked`, the logs).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_PARK_AFTER_S", "DEFAULT_STUCK_AFTER_S", "ConsumerHealth", "StuckPartition"]

#: How long dead-lettering may keep failing before the record is parked (`CF_DLQ_PARK_AFTER_S`).
DEFAULT_PARK_AFTER_S = 180.0
#: How long a partition may stay on one failing offset before it counts as stuck
#: (`CF_PARTITION_STUCK_AFTER_S`).
DEFAULT_STUCK_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class StuckPartition:
    """A partition held on `offset` since `since` (epoch seconds, the record's first failure)."""

    topic: str
    partition: int
    offset: int
    since: float

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(frozen=True, slots=True)
class ConsumerHealth:
    """A snapshot: `parked` records since the consumer started, partitions stuck past the threshold."""

    group: str
    parked: int = 0
    stuck: tuple[StuckPartition, ...] = ()

    @property
    def degraded(self) -> bool:
        return bool(self.parked or self.stuck)
