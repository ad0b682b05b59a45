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
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from messaging.client_logs import client_config

__all__ = ["TopicGuard", "TopicLayout", "admin_for", "ensure_topics"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicLayout:
    """How the platform creates a topic: partitions, replicas, and the in-sync replicas a write with
    `acks=all` needs (None: the broker's `min.insync.replicas`). One broker: 1 replica; a cluster of
    three: 3 replicas, min ISR 2, so one broker may be down without refusing writes."""

    partitions: int = 3
    replication_factor: int = 1
    min_insync_replicas: int | None = None

    def new_topic(self, name: str) -> NewTopic:
        config = ({} if self.min_insync_replicas is None
                  else {"min.insync.replicas": str(self.min_insync_replicas)})
        return NewTopic(name, num_partitions=self.partitions, replication_factor=self.replication_factor,
                        config=config)


def ensure_topics(bootstrap_servers: str | AdminClient, topics: Iterable[str], *,
                  layout: TopicLayout = TopicLayout(), timeout: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet with `layout`; return the names created."""
    admin = admin_for(bootstrap_servers) if isinstance(bootstrap_servers, str) else bootstrap_servers
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = sorted(set(topics) - existing)
    if not wanted:
        return []
    futures = admin.create_topics(
        [layout.new_topic(name) for name in wanted],
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
    admin.poll(0)  # hand over the log lines librdkafka queued meanwhile
    return created


_admins: dict[str, AdminClient] = {}
_admins_lock = threading.Lock()


def admin_for(bootstrap_servers: str) -> AdminClient:
    """The process's one AdminClient for `bootstrap_servers` (each client is a handful of threads and
    connections; topic checks and creation need no more than one)."""
    with _admins_lock:
        admin = _admins.get(bootstrap_servers)
        if admin is None:
            admin = _admins[bootstrap_servers] = AdminClient({
                "bootstrap.servers": bootstrap_servers, "log_level": 3,
                **client_config("cloud-factory-admin")})
        return admin


class TopicGuard:
    """Makes sure a topic exists before the first record goes to it (cached per process).

    When the broker cannot be asked (it is down), `ensure` gives up quickly and remembers the miss for
    `retry_after` seconds, so the record goes its normal way (the producer's spool) without a wait on
    every record; the spool replayer asks again before re-publishing.
    """

    def __init__(self, bootstrap_servers: str, *, layout: TopicLayout = TopicLayout(), timeout: float = 5.0,
                 retry_after: float = 5.0) -> None:
        self._admin = admin_for(bootstrap_servers)
        self.layout = layout
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
                created = ensure_topics(self._admin, [topic], layout=self.layout, timeout=self.timeout)
            except KafkaException as exc:
                self._admin.poll(0)
                self._missed_at[topic] = time.monotonic()
                log.warning("cannot make sure topic %s exists (%s); the broker seems unreachable", topic, exc)
                return False
            if created:
                log.info("created topic %s with %d partitions, %d replicas", topic, self.layout.partitions,
                         self.layout.replication_factor)
            self._missed_at.pop(topic, None)
            self._known.add(topic)
            return True
