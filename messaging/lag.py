"""Consumer-group lag: how many records a group has not committed yet, per topic.

Operators of at-least-once consumers read it to tell "idle" from "stuck" (a lag that only grows
means the group's workers are down or failing). Lag counts the partitions the group has committed
on; a partition it never committed on is not counted (it has no position to measure from).

Both questions (committed offsets, log-end offsets) go through the AdminClient: no consumer is
created, so nothing joins, probes or leaves a group just to look.
"""

from __future__ import annotations

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

__all__ = ["group_lag"]


def group_lag(bootstrap_servers: str, group: str, *, timeout: float = 10.0) -> dict[str, int] | None:
    """{topic: log-end offset − committed offset, summed over partitions}; None when `group` has
    committed nothing (it does not exist, or never handled a record). Raises KafkaException when the
    broker cannot be asked."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 3})
    request = ConsumerGroupTopicPartitions(group)
    committed = admin.list_consumer_group_offsets([request], request_timeout=timeout)[group].result(timeout)
    partitions = [tp for tp in committed.topic_partitions or [] if tp.offset >= 0 and tp.error is None]
    if not partitions:
        return None
    ends = admin.list_offsets({TopicPartition(tp.topic, tp.partition): OffsetSpec.latest() for tp in partitions},
                              request_timeout=timeout)
    lag: dict[str, int] = {}
    for tp in partitions:
        end = ends[TopicPartition(tp.topic, tp.partition)].result(timeout).offset
        lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end - tp.offset)
    return lag
