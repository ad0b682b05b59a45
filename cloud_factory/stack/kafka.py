"""Apache Kafka in KRaft mode: one JVM acting as broker and controller on loopback.

The broker's jars come from Maven Central through the POM shipped in `resources/`, so the only
prerequisites are `java` (17+) and `mvn`.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from importlib import resources
from pathlib import Path

from cloud_factory.stack._component import Component
from cloud_factory.stack._process import StackError, port_open, spawn

__all__ = ["KAFKA_VERSION", "KafkaComponent", "new_cluster_id"]

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

class KafkaComponent(Component):
    name = "kafka"

    @property
    def ports(self) -> list[int]:
        return [self.settings.kafka_port, self.settings.kafka_controller_port]

    @property
    def address(self) -> str:
        return self.settings.bootstrap_servers

    @property
    def lib_dir(self) -> Path:
        return self.home / f"lib-{KAFKA_VERSION}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def check_prerequisites(self) -> None:
        if shutil.which("java") is None:
            raise StackError("kafka: `java` not found on PATH; install a JDK 17+ (Debian: openjdk-17-jre-headless)")
        if not (self.lib_dir / ".complete").exists() and shutil.which("mvn") is None:
            raise StackError("kafka: `mvn` not found on PATH; install Maven (Debian: maven) to fetch the broker jars")

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
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://{s.host}:{s.kafka_port},CONTROLLER://{s.host}:{s.kafka_controller_port}",
            "advertised.listeners": f"PLAINTEXT://{s.host}:{s.kafka_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.bootstrap.servers": f"{s.host}:{s.kafka_controller_port}",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(s.kafka_partitions),
            # A single node cannot replicate: internal topics must accept replication factor 1.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Topics are created deliberately by the platform, never by a stray produce.
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": "0",
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
        cluster_id = new_cluster_id()
        result = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id,
                       "-c", str(self.home / "server.properties")),
            capture_output=True, text=True,
        )
        with open(self.log_path, "a") as log:
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise self.failure(f"formatting KRaft storage failed (exit {result.returncode})")

    def launch(self) -> None:
        spawn(self._java("kafka.Kafka", str(self.home / "server.properties")),
              log_file=self.home / "stdout.log", pid_file=self.pid_file)

    def probe(self) -> bool:
        if not port_open(self.settings.host, self.settings.kafka_port):
            return False
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.address, "log_level": 0})
        try:
            metadata = admin.list_topics(timeout=3)
        except Exception:
            return False
        return bool(metadata.brokers)
