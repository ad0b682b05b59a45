"""`CF_KAFKA_BROKERS=3 cloud-factory stack up`, as a user runs it: a stack of the test's own (its state
directory, free ports) with three brokers, inspected and taken down through the CLI."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

import schemas
from cloud_factory.stack._process import pid_alive, port_open, read_pid
from cloud_factory.stack.ports import free_port_block
from core.settings import Settings
from messaging.wiring import ensure_catalog_topics

pytestmark = pytest.mark.stack

CLI = [str(Path(sys.executable).with_name("cloud-factory"))]


def _cluster_env(settings: Settings, state_dir: Path) -> dict[str, str]:
    taken = {*settings.kafka_broker_ports, *settings.kafka_controller_ports, settings.temporal_port,
             settings.temporal_ui_port, settings.pg_port}
    kafka = free_port_block(6, avoid=taken)  # three client ports, then three controller ports
    temporal = free_port_block(2, avoid=taken | set(range(kafka, kafka + 6)))
    pg = free_port_block(1, avoid=taken | set(range(kafka, kafka + 6)) | {temporal, temporal + 1})
    env = {name: value for name, value in os.environ.items() if name != "CF_KAFKA_CONTROLLER_PORT"}
    return {**env, "CF_STATE_DIR": str(state_dir), "CF_KAFKA_BROKERS": "3", "CF_KAFKA_PORT": str(kafka),
            "CF_KAFKA_HEAP": "384m", "CF_TEMPORAL_PORT": str(temporal),
            "CF_TEMPORAL_UI_PORT": str(temporal + 1), "CF_PG_PORT": str(pg), "CF_ENV": "cluster",
            "COLUMNS": "250"}


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=300)


def _rows(output: str) -> dict[str, str]:
    """The stack table's rows by component name (`kafka-1`, …)."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│") if cell.strip()]
        if cells and re.fullmatch(r"kafka(-\d)?|temporal|postgres", cells[0]):
            rows[cells[0]] = " | ".join(cells)
    return rows


def _under_replicated(row: str) -> int:
    found = re.search(r"(\d+) under-replicated", row)
    assert found, row
    return int(found.group(1))


def test_three_brokers_up_status_and_down_through_the_cli(stack, settings: Settings, tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "kafka").mkdir(parents=True)
    real_lib = next((settings.state_dir / "kafka").glob("lib-*"))
    os.symlink(real_lib, state / "kafka" / real_lib.name)  # reuse the jars: no second download
    env = _cluster_env(settings, state)
    ours = Settings(state_dir=state, kafka_brokers=3, kafka_port=int(env["CF_KAFKA_PORT"]), env="cluster")
    try:
        up = _cli(env, "stack", "up")
        assert up.returncode == 0, up.stderr[-2000:]
        rows = _rows(up.stdout)
        assert {"kafka-1", "kafka-2", "kafka-3"} <= set(rows) and "kafka" not in rows, up.stdout
        for node, port in zip((1, 2, 3), ours.kafka_broker_ports, strict=True):
            assert "healthy" in rows[f"kafka-{node}"] and f"127.0.0.1:{port}" in rows[f"kafka-{node}"]

        # The catalog's topics get three replicas and min.insync.replicas=2 without any other setting.
        topic = schemas.topic_for("order.created", env="cluster")
        ensure_catalog_topics(ours, ["order.created"])
        admin = AdminClient({"bootstrap.servers": ours.bootstrap_servers, "log_level": 0})
        deadline = time.monotonic() + 30  # a fresh topic's partitions reach the metadata shortly after
        while not (partitions := admin.list_topics(topic, timeout=10).topics[topic].partitions.values()):
            assert time.monotonic() < deadline, f"{topic} has no partitions in the metadata after 30 s"
            time.sleep(0.2)
        assert {len(p.replicas) for p in partitions} == {3}
        [config] = admin.describe_configs([ConfigResource("topic", topic)]).values()
        assert config.result()["min.insync.replicas"].value == "2"

        # One broker killed: status says which, counts the under-replicated partitions, exits 1.
        victim = read_pid(state / "run" / "kafka-2.pid")
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        # (The controller fences a silent broker after its session times out, ~9 s; then the
        # partitions it replicated shrink their in-sync sets.)
        deadline = time.monotonic() + 60
        while True:
            status = _cli(env, "stack", "status")
            assert status.returncode == 1
            rows = _rows(status.stdout)
            assert "stopped" in rows["kafka-2"], rows
            if sum(_under_replicated(rows[f"kafka-{n}"]) for n in (1, 3)) >= len(partitions):
                break
            assert time.monotonic() < deadline, f"no under-replicated partitions reported: {rows}"
            time.sleep(1)

        # `stack up` brings back only the missing broker; a different broker count is refused in one line.
        survivors = {n: read_pid(state / "run" / f"kafka-{n}.pid") for n in (1, 3)}
        again = _cli(env, "stack", "up")
        assert again.returncode == 0, again.stderr[-2000:]
        assert {n: read_pid(state / "run" / f"kafka-{n}.pid") for n in (1, 3)} == survivors
        assert "healthy" in _rows(again.stdout)["kafka-2"]
        single = _cli({**env, "CF_KAFKA_BROKERS": "1"}, "stack", "up")
        assert single.returncode == 1 and "Traceback" not in single.stderr
        message = " ".join(single.stderr.split())
        assert "kafka-1, kafka-2, kafka-3 of another broker count are running" in message, single.stderr
        assert "stack down" in message
    finally:
        pids = {pid_file.stem: read_pid(pid_file) for pid_file in (state / "run").glob("*.pid")}
        down = _cli(env, "stack", "down")
    assert down.returncode == 0, down.stderr[-2000:]
    assert {"kafka-1", "kafka-2", "kafka-3"} <= set(pids)
    assert not [name for name, pid in pids.items() if pid is not None and pid_alive(pid)]
    assert not [port for port in ours.kafka_broker_ports if port_open("127.0.0.1", port)]
