"""Zero loss while Kafka is down: a broker of this test's own is stopped mid-stream and restarted.

(The shared broker is never touched: other engineers' tests run against it.)
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

import schemas
from cloud_factory.stack.kafka import KafkaComponent
from core.settings import Settings
from messaging import HandlerContext
from messaging.fallback.spool import FallbackSpool
from messaging.producer import EventProducer
from messaging.wiring import consumer_from, keyring_from
from tests.support.messaging_support import ensure, event, running, wait_until
from tests.support.private_broker import start_broker

pytestmark = pytest.mark.stack




def test_broker_down_mid_stream_loses_nothing(private_broker: tuple[Settings, KafkaComponent], tmp_path: Path,
                                              unique: str) -> None:
    s, kafka = private_broker
    ensure(s, "order.created")
    quick = {"reconnect.backoff.max.ms": 500, "socket.connection.setup.timeout.ms": 2000}
    spool = FallbackSpool(tmp_path / "spool")
    producer = EventProducer(s.bootstrap_servers, keyring_from(s, "order"), env=s.env,
                             delivery_timeout_ms=2000, spool=spool, replay_interval=0.3, extra_config=quick)
    flows = [uuid.uuid4() for _ in range(6)]
    sent: dict[uuid.UUID, list[str]] = defaultdict(list)
    spooled: list[str] = []
    phase = {"n": 0}
    stop_publishing = threading.Event()

    def publish() -> None:
        while not stop_publishing.is_set():
            for flow in flows:
                envelope = event(correlation_id=flow)
                delivery = producer.publish(envelope)
                sent[flow].append(str(envelope.event_id))
                if delivery.spooled:
                    spooled.append(str(envelope.event_id))
            phase["n"] += 1
            time.sleep(0.02)

    seen: dict[uuid.UUID, list[str]] = defaultdict(list)
    runs: dict[str, int] = defaultdict(int)
    lock = threading.Lock()

    def handler(envelope: schemas.Envelope, context: HandlerContext) -> None:
        with lock:
            runs[str(envelope.event_id)] += 1
            seen[envelope.correlation_id].append(str(envelope.event_id))

    consumer = consumer_from(s, group_id=f"outage-{unique}", handlers={"order.created": handler},
                             extra_config=quick, create_topics=False)
    publisher = threading.Thread(target=publish, daemon=True)
    with running(consumer):
        publisher.start()
        wait_until(lambda: phase["n"] >= 5, what="a few rounds before the outage")
        kafka.stop()  # the broker goes away mid-stream
        wait_until(lambda: len(spooled) >= 30, timeout=60, what="records spooled during the outage")
        assert spool.status().pending_records > 0
        start_broker(kafka)  # and comes back
        wait_until(lambda: not spool.has_pending() and len(spooled) >= 30, timeout=60, what="spool replayed")
        wait_until(lambda: phase["n"] >= 5 + 40, timeout=60, what="publishing after the outage")
        stop_publishing.set()
        publisher.join(30)
        wanted = {event_id for ids in sent.values() for event_id in ids}

        def all_seen() -> bool:
            with lock:
                return wanted <= {event_id for ids in seen.values() for event_id in ids}

        # Every id, not a count: a record handled twice must not stand in for one not handled yet.
        wait_until(all_seen, timeout=90, what="every sent event handled")
    producer.close()
    assert spool.status().pending_records == 0 and spool.status().failed_records == 0
    problems = {}
    for flow in set(sent) | set(seen):
        want, got = sent.get(flow, []), seen.get(flow, [])
        if want != got:
            problems[str(flow)] = {"lost": sorted(set(want) - set(got)),
                                   "extra": sorted(set(got) - set(want)),
                                   "doubled": sorted({e for e in got if got.count(e) > 1}),
                                   "spooled_lost": sorted((set(want) - set(got)) & set(spooled)),
                                   "same_set_other_order": set(want) == set(got)}
    # none lost, none doubled, order per correlationId kept
    assert not problems, problems
    assert set(runs.values()) == {1}
    assert spooled  # the outage really sent records through the spool
