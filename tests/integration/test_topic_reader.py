"""The range reader answers while a partition's leader is still being elected (a fresh topic, a
restarted broker): the broker's "not leader" is asked again, not raised at the tool's user."""

from __future__ import annotations

import time

from confluent_kafka.admin import AdminClient

from core.settings import Settings
from messaging.reader import TopicReader
from messaging.topics import TopicLayout, ensure_topics

ROUNDS = 5  # a fresh topic answered "not leader" 9 times in 10 before the reader asked again


def test_ranges_since_a_moment_of_a_topic_created_just_now(stack, settings: Settings, unique: str) -> None:
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    topics = [f"test.reader-{unique}-{n}" for n in range(ROUNDS)]
    try:
        for topic in topics:
            layout = TopicLayout(partitions=3, replication_factor=1)
            ensure_topics(settings.bootstrap_servers, [topic], layout=layout)
            with TopicReader(settings.bootstrap_servers, group_prefix=f"test-{unique}") as reader:
                assert reader.to_end(topic, partitions=range(3), since_ms=int(time.time() * 1000)) == []
    finally:
        admin.delete_topics(topics)
