"""Topic administration: topics are created deliberately with the configured partition count.

The broker runs with `auto.create.topics.enable=false`, so a produce to a missing topic fails
instead of silently creating a one-partition topic that would break per-key ordering later.
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

__all__ = ["ensure_topics"]


def ensure_topics(bootstrap_servers: str, topics: Iterable[str], *, partitions: int = 3,
                  replication_factor: int = 1, timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = sorted(set(topics) - existing)
    if not wanted:
        return []
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor) for name in wanted],
        operation_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created
