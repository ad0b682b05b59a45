"""The producer on the real broker: a caller that blocks on its acknowledgement is not held by
`linger.ms`, which only batches pipelined sends."""

from __future__ import annotations

import time
import uuid

import pytest

import schemas
from core.settings import Settings
from messaging.producer import EventProducer
from messaging.wiring import keyring_from
from tests.support.messaging_support import ensure, event, isolated, read_topic

pytestmark = pytest.mark.stack

LINGER_S = 4.0


def test_a_blocking_publish_does_not_wait_out_the_linger(stack, settings: Settings, unique: str) -> None:
    """With a 4 s `linger.ms`, three publishes one after another each come back acknowledged at once
    (waiting it out, as polling did, took 4 s each), and the records are on the topic in order."""
    s = isolated(settings, unique)
    ensure(s, "order.created")
    producer = EventProducer(s.bootstrap_servers, keyring_from(s, "order"), env=s.env,
                             extra_config={"linger.ms": int(LINGER_S * 1000)})
    try:
        flow = uuid.uuid4()  # one partition, so the topic's order is the publishes' order
        producer.publish(event(correlation_id=flow))  # connection and producer id: not what is measured
        sent, took = [], []
        for _ in range(3):
            envelope = event(correlation_id=flow)
            started = time.monotonic()
            delivery = producer.publish(envelope)
            took.append(time.monotonic() - started)
            assert not delivery.spooled and delivery.offset >= 0
            sent.append(str(envelope.event_id))
        assert max(took) < LINGER_S / 2, f"took {[round(t, 2) for t in took]} s, linger {LINGER_S} s"
        topic = schemas.topic_for("order.created", env=s.env)
        read = [schemas.decode(record.value()).event_id for record in read_topic(s, topic, expect=4)]
        assert [str(event_id) for event_id in read[1:]] == sent
    finally:
        producer.close(10)
