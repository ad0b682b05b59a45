"""A three-broker Kafka cluster of one test module's own, to kill brokers in: the shared broker is
never touched.

It is the stack's own cluster mode (`CF_KAFKA_BROKERS=3`: three KRaft nodes, each broker and
controller voter) in a state directory under the module's temporary directory, on two blocks of
free consecutive ports, with the stack's jars and signing keys. Topics made through its settings get
three replicas and `min.insync.replicas=2`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka.admin import AdminClient

from cloud_factory.stack._process import pid_alive
from cloud_factory.stack.kafka import KafkaComponent, kafka_nodes
from cloud_factory.stack.ports import free_port_block
from core.settings import Settings

__all__ = ["Cluster", "private_cluster"]

BROKERS = 3


@dataclass
class Cluster:
    """The cluster's settings and its nodes (node 1 first), with the faults a test needs."""

    settings: Settings
    nodes: list[KafkaComponent]

    def node(self, node_id: int) -> KafkaComponent:
        return self.nodes[node_id - 1]

    def kill(self, node_id: int) -> None:
        """SIGKILL the node's JVM: no controlled shutdown, no leader hand-over."""
        node = self.node(node_id)
        pid = node.pid()
        assert pid is not None, f"{node.name} is not running"
        os.kill(pid, 9)
        deadline = time.monotonic() + 10
        while pid_alive(pid):
            assert time.monotonic() < deadline, f"{node.name} (pid {pid}) survived SIGKILL"
            time.sleep(0.05)
        node.pid_file.unlink(missing_ok=True)

    def start(self, *node_ids: int, timeout: float = 120) -> None:
        """Launch the nodes (all of them when none is named) and wait until each is a live broker."""
        wanted = [self.node(n) for n in node_ids] if node_ids else self.nodes
        for node in wanted:
            if node.pid() is None:
                node.launch()
        deadline = time.monotonic() + timeout
        for node in wanted:
            while not node.probe():
                pid = node.pid()
                assert pid is not None and pid_alive(pid), f"{node.name} died; see {node.log_path}"
                assert time.monotonic() < deadline, (f"{node.name} not up after {timeout:.0f}s; "
                                                     f"see {node.log_path}")
                time.sleep(0.3)

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.settings.bootstrap_servers, "log_level": 0})

    def leader_of(self, topic: str, partition: int) -> int:
        metadata = self.admin().list_topics(topic, timeout=10)
        return metadata.topics[topic].partitions[partition].leader

    def fully_replicated(self, topic: str) -> bool:
        """Every partition of `topic` has all its replicas in sync (after a restart: caught up)."""
        metadata = self.admin().list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions.values()
        return bool(partitions) and all(len(p.isrs) == len(p.replicas) == BROKERS for p in partitions)


@pytest.fixture(scope="module")
def private_cluster(stack, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    home = tmp_path_factory.mktemp("cluster")
    taken = {*settings.kafka_broker_ports, *settings.kafka_controller_ports, settings.temporal_port,
             settings.temporal_ui_port, settings.pg_port}
    clients = free_port_block(BROKERS, avoid=taken)
    controllers = free_port_block(BROKERS, avoid=taken | set(range(clients, clients + BROKERS)))
    own = settings.model_copy(update={
        "state_dir": home / "state", "kafka_brokers": BROKERS, "kafka_port": clients,
        "kafka_controller_port": controllers, "kafka_heap": "384m",
        "kafka_replication_factor": None, "kafka_min_insync_replicas": None,
        "env": f"c{os.urandom(5).hex()}", "fallback_dir": home / "fallback",
        "signing_keys_file": settings.development_keys_path,
    })
    lib = own.state_dir / "kafka"
    lib.mkdir(parents=True)
    real_lib = next((settings.state_dir / "kafka").glob("lib-*"))
    os.symlink(real_lib, lib / real_lib.name)  # reuse the jars: no second download
    nodes = kafka_nodes(own)
    for node in nodes:
        node.prepare()
    cluster = Cluster(own, nodes)
    cluster.start()
    try:
        yield cluster
    finally:
        for node in nodes:
            pid = node.pid()
            if pid is not None:
                os.kill(pid, 9)  # nothing to keep: no controlled shutdown of a quorum going away
                node.pid_file.unlink(missing_ok=True)
