"""Apache Kafka in KRaft mode on loopback: one node, or a cluster of `CF_KAFKA_BROKERS` nodes.

Each node is one JVM acting as broker and controller ("combined" servers, which Kafka's operations
guide allows for development). A cluster's nodes are all voters of one dynamic controller quorum
(KIP-853), bootstrapped together with `--initial-controllers`: three voters outlive one failure,
as the guide's `2N + 1` asks. Internal topics are replicated like the platform's own (three
replicas, two in sync, on three brokers).

The broker's jars come from Maven Central through the POM shipped in `resources/`, once per state
directory and shared by every node, so the only prerequisites are `java` (17+) and `mvn`.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from cloud_factory.stack._component import Component
from cloud_factory.stack._process import StackError, port_open, read_pid, spawn
from core.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka.admin import ClusterMetadata

__all__ = ["KAFKA_VERSION", "KafkaComponent", "kafka_nodes", "new_cluster_id", "other_layout_pids"]

KAFKA_VERSION = "4.4.0"

_LOG4J = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = WARN
"""



def new_cluster_id() -> str:
    """A KRaft cluster id (22 url-safe base64 characters of a random UUID), never starting with "-":
    the storage tool would read such an id as an option and fail (1 start in 64) — Kafka's own
    generator avoids it the same way."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id

def kafka_nodes(settings: Settings) -> list[KafkaComponent]:
    """The broker nodes the settings ask for: `kafka` alone, or `kafka-1` … `kafka-N`."""
    return [KafkaComponent(settings, node) for node in range(1, settings.kafka_brokers + 1)]


def other_layout_pids(settings: Settings) -> dict[str, int]:
    """Live Kafka nodes of this state directory that the current broker count does not name (a
    single broker while a cluster is asked for, or the reverse): name → pid."""
    wanted = {node.name for node in kafka_nodes(settings)}
    found = {}
    for pid_file in sorted((settings.state_dir / "run").glob("kafka*.pid")):
        name = pid_file.stem
        if name not in wanted and (pid := read_pid(pid_file)) is not None:
            found[name] = pid
    return found


class KafkaComponent(Component):
    """One KRaft node. With one broker it is `kafka` (state in `kafka/`), in a cluster `kafka-<n>`."""

    def __init__(self, settings: Settings, node: int = 1) -> None:
        self.node = node
        self.name = "kafka" if settings.kafka_brokers == 1 else f"kafka-{node}"
        super().__init__(settings)

    @property
    def clustered(self) -> bool:
        return self.settings.kafka_brokers > 1

    @property
    def client_port(self) -> int:
        return self.settings.kafka_broker_ports[self.node - 1]

    @property
    def controller_port(self) -> int:
        return self.settings.kafka_controller_ports[self.node - 1]

    @property
    def ports(self) -> list[int]:
        return [self.client_port, self.controller_port]

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.client_port}"

    @property
    def shared_dir(self) -> Path:
        """What every node of the state directory shares: the jars and a cluster's identity."""
        return self.settings.state_dir / "kafka"

    @property
    def lib_dir(self) -> Path:
        return self.shared_dir / f"lib-{KAFKA_VERSION}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def check_prerequisites(self) -> None:
        s = self.settings
        overlap = set(s.kafka_broker_ports) & set(s.kafka_controller_ports)
        if overlap:
            raise StackError(
                f"kafka: controller port(s) {sorted(overlap)} collide with the client ports "
                f"{s.kafka_broker_ports[0]}–{s.kafka_broker_ports[-1]} of {s.kafka_brokers} broker(s); "
                f"unset CF_KAFKA_CONTROLLER_PORT or move it past {s.kafka_broker_ports[-1]}")
        if shutil.which("java") is None:
            raise StackError("kafka: `java` not found on PATH; install a JDK 17+ "
                             "(Debian: openjdk-17-jre-headless)")
        if not (self.lib_dir / ".complete").exists() and shutil.which("mvn") is None:
            raise StackError("kafka: `mvn` not found on PATH; install Maven (Debian: maven) "
                             "to fetch the broker jars")

    def prepare(self) -> None:
        self._fetch_jars()
        self._write_config()
        if not (self.data_dir / "meta.properties").exists():
            self._format_storage()

    def _fetch_jars(self) -> None:
        """Resolve the broker classpath from Maven Central once; a marker makes it idempotent."""
        marker = self.lib_dir / ".complete"
        if marker.exists():
            return
        self.lib_dir.mkdir(parents=True, exist_ok=True)
        pom = resources.files("cloud_factory.stack") / "resources" / "pom.xml"
        with resources.as_file(pom) as pom_path:
            result = subprocess.run(
                ["mvn", "-q", "-B", "-f", str(pom_path), "dependency:copy-dependencies",
                 "-DincludeScope=runtime", f"-Dkafka.version={KAFKA_VERSION}",
                 f"-DoutputDirectory={self.lib_dir}"],
                capture_output=True, text=True,
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:
            log.write(result.stdout + result.stderr)
        if result.returncode != 0 or not any(self.lib_dir.glob("kafka_2.13-*.jar")):
            raise self.failure(f"Maven could not resolve the broker jars (exit {result.returncode})")
        marker.write_text(KAFKA_VERSION + "\n")

    def _write_config(self) -> None:
        s = self.settings
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        listeners = f"PLAINTEXT://{s.host}:{self.client_port},CONTROLLER://{s.host}:{self.controller_port}"
        replicas, min_isr = str(s.replication_factor), str(s.min_insync_replicas)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node),
            "listeners": listeners,
            "advertised.listeners": listeners,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.bootstrap.servers": ",".join(f"{s.host}:{port}"
                                                            for port in s.kafka_controller_ports),
            "log.dirs": str(self.data_dir),
            "num.partitions": str(s.kafka_partitions),
            # Internal topics and the broker's defaults replicate like the platform's topics (one
            # node cannot replicate at all, so there everything is 1).
            "default.replication.factor": replicas,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": replicas,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            # Topics are created deliberately by the platform, never by a stray produce.
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": "0",
            # Consumers join with the consumer group protocol (`messaging.groups`): heartbeats each
            # second pass a rebalance's steps on quickly; a group may ask for sessions down to 3 s
            # (the tests' killed workers hand their partitions on sooner).
            "group.consumer.heartbeat.interval.ms": "1000",
            "group.consumer.min.heartbeat.interval.ms": "500",
            "group.consumer.min.session.timeout.ms": "3000",
        }
        (self.home / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.home / "log4j2.properties").write_text(_LOG4J.format(log=self.log_path))

    def _java(self, main_class: str, *args: str) -> list[str]:
        return [
            "java", f"-Xmx{self.settings.kafka_heap}", "-Xms256m", "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            "-cp", f"{self.lib_dir}/*", main_class, *args,
        ]

    def _format_storage(self) -> None:
        if self.clustered:
            cluster_id, voters = self._cluster_identity()
            quorum = ["--initial-controllers", voters]
        else:
            cluster_id, quorum = new_cluster_id(), ["--standalone"]
        result = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster_id, *quorum,
                       "-c", str(self.home / "server.properties")),
            capture_output=True, text=True,
        )
        with open(self.log_path, "a") as log:
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise self.failure(f"formatting KRaft storage failed (exit {result.returncode})")

    def _cluster_identity(self) -> tuple[str, str]:
        """The cluster id and the initial voters (`id@host:port:directory-id`, …) every node is
        formatted with: drawn once per state directory, so all nodes agree."""
        path = self.shared_dir / f"cluster-{self.settings.kafka_brokers}.properties"
        if not path.is_file():
            s = self.settings
            voters = ",".join(f"{node}@{s.host}:{port}:{new_cluster_id()}"
                              for node, port in enumerate(s.kafka_controller_ports, start=1))
            self.shared_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(f"cluster.id={new_cluster_id()}\ninitial.controllers={voters}\n")
        identity = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        return identity["cluster.id"], identity["initial.controllers"]

    def launch(self) -> None:
        spawn(self._java("kafka.Kafka", str(self.home / "server.properties")),
              log_file=self.home / "stdout.log", pid_file=self.pid_file)

    def _metadata(self) -> ClusterMetadata | None:
        """The cluster's metadata as this node serves it, or None when it does not answer."""
        if not port_open(self.settings.host, self.client_port):
            return None
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.address, "log_level": 0,
                             "client.id": f"cloud-factory-stack-{self.name}"})
        try:
            return admin.list_topics(timeout=3)
        except Exception:  # noqa: BLE001 - not answering is what the probe reports
            return None

    def probe(self) -> bool:
        """Healthy once the node answers and the cluster lists it as a live broker."""
        metadata = self._metadata()
        return metadata is not None and self.node in metadata.brokers

    def detail(self) -> str:
        """Partitions this node leads and how many of them are under-replicated (an in-sync replica
        set smaller than the replica set — Kafka's own `UnderReplicatedPartitions` measure)."""
        metadata = self._metadata()
        if metadata is None or self.node not in metadata.brokers:
            return ""
        led = under = 0
        for topic in metadata.topics.values():
            for partition in topic.partitions.values():
                if partition.leader == self.node:
                    led += 1
                    under += len(partition.isrs) < len(partition.replicas)
        return f"leads {led} partitions, {under} under-replicated"
