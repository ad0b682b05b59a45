"""Replication for real: a three-broker cluster of this module's own, brokers killed with SIGKILL
while thousands of events over many flows stream through it.

Topics have three replicas and `min.insync.replicas=2`; producers write with `acks=all`. So one
broker down must cost nothing — no record spooled, none lost, none handled twice, every flow in
order — and two brokers down must stop acknowledgements: the producer spools what it cannot get
acknowledged (or, with no spool, raises), and every record acknowledged before stays readable.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import schemas
from messaging import HandlerContext
from messaging.errors import BrokerUnavailableError
from messaging.fallback.spool import FallbackSpool
from messaging.producer import Delivery, EventProducer
from messaging.wiring import consumer_from, keyring_from, topic_layout_from
from tests.support.messaging_support import ensure, event, isolated, running, wait_until
from tests.support.private_cluster import Cluster, private_cluster  # noqa: F401 - the fixture

pytestmark = pytest.mark.stack

EVENT_TYPE = "order.created"
# Reconnect quickly to a restarted broker; fail over quickly from a killed one.
QUICK = {"reconnect.backoff.max.ms": 500, "socket.connection.setup.timeout.ms": 2000,
         "topic.metadata.refresh.interval.ms": 2000}


@dataclass
class Ledger:
    """What was sent per flow (in order) and what the handler saw per flow (in order)."""

    sent: dict[uuid.UUID, list[str]] = field(default_factory=lambda: defaultdict(list))
    seen: dict[uuid.UUID, list[str]] = field(default_factory=lambda: defaultdict(list))
    runs: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    spooled: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self, envelope: schemas.Envelope, context: HandlerContext) -> None:
        with self.lock:
            self.runs[str(envelope.event_id)] += 1
            self.seen[envelope.correlation_id].append(str(envelope.event_id))

    def all_seen(self) -> bool:
        with self.lock:
            wanted = {event_id for ids in self.sent.values() for event_id in ids}
            return wanted <= {event_id for ids in self.seen.values() for event_id in ids}

    def problems(self) -> dict[str, object]:
        """Per flow: lost, extra, doubled or reordered events (empty when every flow is exact)."""
        found: dict[str, object] = {}
        for flow in set(self.sent) | set(self.seen):
            want, got = self.sent.get(flow, []), self.seen.get(flow, [])
            if want != got:
                found[str(flow)] = {"lost": len(set(want) - set(got)), "extra": len(set(got) - set(want)),
                                    "doubled": len({e for e in got if got.count(e) > 1}),
                                    "reordered": set(want) == set(got)}
        handled_twice = sorted(event_id for event_id, n in self.runs.items() if n != 1)
        if handled_twice:
            found["handled more than once"] = handled_twice[:5]
        return found


def _producer(cluster: Cluster, spool: FallbackSpool | None, *, delivery_timeout_ms: int) -> EventProducer:
    s = cluster.settings
    return EventProducer(s.bootstrap_servers, keyring_from(s, "order"), env=s.env, spool=spool,
                         delivery_timeout_ms=delivery_timeout_ms, replay_interval=0.3,
                         extra_config=QUICK, layout=topic_layout_from(s))


def _stream(cluster: Cluster, ledger: Ledger, spool: FallbackSpool, *, flows: int, rounds: int,
            faults: dict[int, Callable[[], None]], tmp_group: str) -> None:
    """Publish `rounds` rounds of one event per flow (pipelined, flushed per round, ~10 rounds/s)
    while a consumer handles them; run each fault when its round is reached; wait until every
    sent event was handled."""
    producer = _producer(cluster, spool, delivery_timeout_ms=60_000)
    flow_ids = [uuid.uuid4() for _ in range(flows)]
    reached = {"round": -1}
    done = threading.Event()

    def publish() -> None:
        for number in range(rounds):
            for flow in flow_ids:
                envelope = event(EVENT_TYPE, correlation_id=flow)
                event_id = str(envelope.event_id)

                def delivered(err: object, delivery: Delivery | None, event_id: str = event_id) -> None:
                    if err is not None:
                        ledger.failed.append(event_id)
                    elif delivery is not None and delivery.spooled:
                        ledger.spooled.append(event_id)

                producer.send(envelope, on_delivery=delivered)
                ledger.sent[flow].append(event_id)
            assert producer.flush(90) == 0, f"round {number}: records still unacknowledged after 90 s"
            reached["round"] = number
            time.sleep(0.1)
        done.set()

    consumer = consumer_from(cluster.settings, group_id=tmp_group, handlers={EVENT_TYPE: ledger.handler},
                             extra_config=QUICK, create_topics=False)
    publisher = threading.Thread(target=publish, daemon=True)
    with running(consumer):
        publisher.start()
        for at_round, fault in sorted(faults.items()):
            wait_until(lambda at_round=at_round: reached["round"] >= at_round, timeout=120,
                       what=f"round {at_round} published")
            fault()
        wait_until(done.is_set, timeout=180, what="every round published and acknowledged")
        publisher.join(10)
        wait_until(ledger.all_seen, timeout=120, what="every sent event handled")
    producer.close()


@pytest.fixture
def healthy_cluster(private_cluster: Cluster, unique: str) -> Cluster:  # noqa: F811 - the module's cluster
    """The module's cluster with every node running again (a test before may have killed some),
    seen through settings of this test's own env segment: its topics are its alone."""
    private_cluster.start()
    return Cluster(isolated(private_cluster.settings, unique), private_cluster.nodes)


def _tracebacks_and_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The platform's lines at ERROR or with a traceback: a killed broker is an ordinary fault."""
    return [f"{r.name}: {r.getMessage()}"[:300] for r in caplog.records
            if (r.levelno >= logging.ERROR or r.exc_info) and not r.name.startswith("tests")]


def test_broker_killed_mid_stream_and_restarted_loses_and_repeats_nothing(
        healthy_cluster: Cluster, tmp_path: Path, unique: str, caplog: pytest.LogCaptureFixture) -> None:
    cluster = healthy_cluster
    ensure(cluster.settings, EVENT_TYPE)
    topic = schemas.topic_for(EVENT_TYPE, env=cluster.settings.env)
    ledger, spool = Ledger(), FallbackSpool(tmp_path / "spool")
    _stream(cluster, ledger, spool, flows=60, rounds=80, tmp_group=f"kill-one-{unique}", faults={
        15: lambda: cluster.kill(2),
        40: lambda: cluster.start(2),
    })
    assert sum(len(ids) for ids in ledger.sent.values()) == 60 * 80
    assert not ledger.problems(), ledger.problems()
    # Two in-sync replicas were always there: nothing needed the spool, nothing failed.
    assert not ledger.spooled and not ledger.failed, (len(ledger.spooled), len(ledger.failed))
    assert not _tracebacks_and_errors(caplog), _tracebacks_and_errors(caplog)
    wait_until(lambda: cluster.fully_replicated(topic), timeout=60, what="the restarted broker back in sync")


def test_leader_of_the_busiest_partition_killed(healthy_cluster: Cluster, tmp_path: Path, unique: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    cluster = healthy_cluster
    ensure(cluster.settings, EVENT_TYPE)
    topic = schemas.topic_for(EVENT_TYPE, env=cluster.settings.env)
    ledger, spool = Ledger(), FallbackSpool(tmp_path / "spool")
    killed: dict[str, int] = {}

    def kill_busiest_leader() -> None:
        # The partition carrying the most events so far, and the broker leading it right now.
        metadata = cluster.admin().list_topics(topic, timeout=10).topics[topic].partitions
        from confluent_kafka import Consumer, TopicPartition

        probe = Consumer({"bootstrap.servers": cluster.settings.bootstrap_servers,
                          "group.id": f"probe-{unique}"})
        try:
            sizes = {p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                     for p in metadata}
        finally:
            probe.close()
        busiest = max(sizes, key=sizes.__getitem__)
        killed["partition"], killed["broker"] = busiest, metadata[busiest].leader
        cluster.kill(killed["broker"])
        wait_until(lambda: cluster.leader_of(topic, busiest) not in (killed["broker"], -1), timeout=60,
                   what="a new leader for the busiest partition")

    _stream(cluster, ledger, spool, flows=60, rounds=60, tmp_group=f"kill-leader-{unique}",
            faults={15: kill_busiest_leader})
    assert killed and cluster.leader_of(topic, killed["partition"]) != killed["broker"]
    assert not ledger.problems(), ledger.problems()
    assert not ledger.spooled and not ledger.failed, (len(ledger.spooled), len(ledger.failed))
    assert not _tracebacks_and_errors(caplog), _tracebacks_and_errors(caplog)


def test_two_brokers_down_nothing_acknowledged_is_lost(healthy_cluster: Cluster, tmp_path: Path,
                                                       unique: str) -> None:
    cluster = healthy_cluster
    ensure(cluster.settings, EVENT_TYPE)
    ledger, spool = Ledger(), FallbackSpool(tmp_path / "spool")
    flows = [uuid.uuid4() for _ in range(20)]
    spooling = _producer(cluster, spool, delivery_timeout_ms=3000)
    bare = _producer(cluster, None, delivery_timeout_ms=3000)
    consumer = consumer_from(cluster.settings, group_id=f"two-down-{unique}",
                             handlers={EVENT_TYPE: ledger.handler}, extra_config=QUICK, create_topics=False)

    def publish_round() -> list[Delivery]:
        deliveries = []
        for flow in flows:
            envelope = event(EVENT_TYPE, correlation_id=flow)
            deliveries.append(spooling.publish(envelope, timeout=15))
            ledger.sent[flow].append(str(envelope.event_id))
        return deliveries

    with running(consumer):
        acknowledged = [d for _ in range(10) for d in publish_round()]
        assert not any(d.spooled for d in acknowledged)  # 200 records acknowledged by the cluster
        cluster.kill(2)
        cluster.kill(3)
        # One broker of three: fewer in-sync replicas than min.insync.replicas, no controller quorum.
        # The spooling producer keeps every record in its spool; the bare one refuses to pretend.
        during = [d for _ in range(2) for d in publish_round()]
        assert all(d.spooled for d in during), [d for d in during if not d.spooled][:3]
        assert spool.status().pending_records == len(during) == 40
        refused = event(EVENT_TYPE)
        with pytest.raises(BrokerUnavailableError):
            bare.publish(refused, timeout=15)
        cluster.start(2, 3)
        wait_until(lambda: not spool.has_pending(), timeout=120, what="the spool replayed into the cluster")
        after = [d for _ in range(3) for d in publish_round()]
        assert not any(d.spooled for d in after)
        wait_until(ledger.all_seen, timeout=120, what="every event handled")
    spooling.close()
    bare.close(1)
    # The refused record was never acknowledged, so the producer promised nothing; a broker may
    # still have appended it before the others came back, so it may arrive — but only once.
    assert ledger.seen.pop(refused.correlation_id, []) in ([], [str(refused.event_id)])
    assert not ledger.problems(), ledger.problems()
    assert sum(len(ids) for ids in ledger.sent.values()) == 20 * 15
