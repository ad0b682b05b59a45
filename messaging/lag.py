"""Consumer-group lag: how many records a group has not committed yet, per topic.

Operators of at-least-once consumers read it to tell "idle" from "stuck" (a lag that only grows
means the group's workers are down or failing). Lag counts the partitions the group has committed
on; a partition it never committed on is not counted (it has no position to measure from).
"""

from __future__ import annotations

import uuid

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

__all__ = ["group_lag"]


def group_lag(bootstrap_servers: str, group: str, *, timeout: float = 10.0) -> dict[str, int] | None:
    """{topic: high watermark − committed offset, summed over partitions}; None when `group` has
    committed nothing (it does not exist, or never handled a record). Raises KafkaException when the
    broker cannot be asked."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 3})
    request = ConsumerGroupTopicPartitions(group)
    committed = admin.list_consumer_group_offsets([request], request_timeout=timeout)[group].result(timeout)
    partitions = [tp for tp in committed.topic_partitions or [] if tp.offset >= 0 and tp.error is None]
    if not partitions:
        return None
    # A probe that never subscribes or commits: it only reads watermarks (no group membership).
    probe = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"lag-probe-{uuid.uuid4().hex}",
                      "enable.auto.commit": False, "log_level": 3})
    try:
        lag: dict[str, int] = {}
        for tp in partitions:
            _, high = probe.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=timeout,
                                                  cached=False)
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - tp.offset)
        return lag
    finally:
        probe.close()
