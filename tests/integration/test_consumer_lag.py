"""Consumer-group lag on the real broker: what a group has not committed yet, per topic."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, TopicPartition

import schemas
from cloud_factory.settings import Settings
from messaging.lag import group_lag
from messaging.wiring import producer_from
from tests.integration.messaging_support import ensure, event, isolated

pytestmark = pytest.mark.stack


def test_lag_is_what_the_group_has_not_committed(stack, settings: Settings, unique: str) -> None:
    s = isolated(settings, unique)
    ensure(s, "order.created")
    topic = schemas.topic_for("order.created", env=s.env)
    producer = producer_from(s, fallback=False)
    flow = event().correlation_id  # one key: one partition
    deliveries = [producer.publish(event(correlation_id=flow)) for _ in range(5)]
    partition = deliveries[0].partition
    group = f"lag-{unique}"
    assert group_lag(s.bootstrap_servers, group) is None  # has committed nothing

    consumer = Consumer({"bootstrap.servers": s.bootstrap_servers, "group.id": group,
                         "enable.auto.commit": False})
    try:  # commit past the first two records, as a consumer that handled them would
        consumer.commit(offsets=[TopicPartition(topic, partition, deliveries[1].offset + 1)],
                        asynchronous=False)
    finally:
        consumer.close()
    assert group_lag(s.bootstrap_servers, group) == {topic: 3}
