"""Topic administration: topics are created deliberately with the configured partition count.

The broker runs with `auto.create.topics.enable=false`, so a produce to a missing topic fails
instead of silently creating a one-partition topic that would break per-key ordering later.
`TopicGuard` is how producers honour that: before the first record to a topic, it creates the topic
through the AdminClient if it is missing, once per process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

__all__ = ["REPLICATION_FACTOR", "TopicGuard", "ensure_topics"]

log = logging.getLogger(__name__)

#: Replicas of each topic the platform creates (the local stack is one broker).
REPLICATION_FACTOR = 1


def ensure_topics(bootstrap_servers: str | AdminClient, topics: Iterable[str], *, partitions: int = 3,
                  replication_factor: int = REPLICATION_FACTOR, timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = (AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 3})
             if isinstance(bootstrap_servers, str) else bootstrap_servers)
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


class TopicGuard:
    """Makes sure a topic exists before the first record goes to it (cached per process).

    When the broker cannot be asked (it is down), `ensure` gives up quickly and remembers the miss for
    `retry_after` seconds, so the record goes its normal way (the producer's spool) without a wait on
    every record; the spool replayer asks again before re-publishing.
    """

    def __init__(self, bootstrap_servers: str, *, partitions: int = 3, timeout: float = 5.0,
                 retry_after: float = 5.0) -> None:
        self._admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 3})
        self.partitions = partitions
        self.timeout = timeout
        self.retry_after = retry_after
        self._known: set[str] = set()
        self._missed_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def ensure(self, topic: str) -> bool:
        """True when the topic exists (now or already); False when the broker could not be asked."""
        if topic in self._known:
            return True
        with self._lock:
            if topic in self._known:
                return True
            missed = self._missed_at.get(topic)
            if missed is not None and time.monotonic() - missed < self.retry_after:
                return False
            try:
                created = ensure_topics(self._admin, [topic], partitions=self.partitions,
                                        timeout=self.timeout)
            except KafkaException as exc:
                self._missed_at[topic] = time.monotonic()
                log.warning("cannot make sure topic %s exists (%s); the broker seems unreachable", topic, exc)
                return False
            if created:
                log.info("created topic %s with %d partitions", topic, self.partitions)
            self._missed_at.pop(topic, None)
            self._known.add(topic)
            return True
