"""Topics are created with the configured layout (CF_KAFKA_PARTITIONS, _REPLICATION_FACTOR,
_MIN_INSYNC_REPLICAS): the broker is told, not left to its defaults."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource

from core.settings import Settings
from messaging.topics import TopicLayout, ensure_topics
from messaging.wiring import topic_layout_from


def _partitions(admin: AdminClient, topic: str, timeout_s: float = 15.0) -> dict:
    """The topic's partitions once the broker's metadata shows them (a new topic takes a moment)."""
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = admin.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is None or time.monotonic() > deadline:
            return metadata.partitions
        time.sleep(0.1)


def test_a_topic_gets_the_layouts_partitions_and_min_insync_replicas(
    stack, settings: Settings, unique: str
) -> None:
    topic = f"test.layout-{unique}"
    layout = topic_layout_from(
        settings.model_copy(update={"kafka_partitions": 2, "kafka_min_insync_replicas": 1})
    )
    assert ensure_topics(settings.bootstrap_servers, [topic], layout=layout) == [topic]
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    assert len(_partitions(admin, topic)) == 2
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    config = admin.describe_configs([resource])[resource].result(10)
    assert config["min.insync.replicas"].value == "1" and not config["min.insync.replicas"].is_default
    admin.delete_topics([topic])


def test_more_replicas_than_brokers_is_refused_by_the_broker(stack, settings: Settings, unique: str) -> None:
    with pytest.raises(KafkaException, match="(?i)replication factor"):
        ensure_topics(
            settings.bootstrap_servers,
            [f"test.layout-{unique}"],
            layout=TopicLayout(partitions=1, replication_factor=3),
        )
