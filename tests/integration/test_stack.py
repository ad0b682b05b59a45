"""The local stack on the real servers: health, idempotent up, restart keeps state, clear errors."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import psycopg
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from cloud_factory.stack import ComponentState, Stack, StackError
from cloud_factory.stack.temporal import SEARCH_ATTRIBUTES
from core.settings import Settings
from core.temporal import connect

pytestmark = pytest.mark.stack


def test_all_components_healthy_with_addresses(stack: Stack, settings: Settings) -> None:
    statuses = {status.name: status for status in stack.status()}
    assert set(statuses) == {"kafka", "temporal", "postgres"}
    for status in statuses.values():
        assert status.state is ComponentState.HEALTHY, status
        assert status.pid is not None
    assert statuses["kafka"].address == f"127.0.0.1:{settings.kafka_port}"
    assert str(settings.temporal_ui_port) in statuses["temporal"].address


def test_up_is_idempotent(stack: Stack) -> None:
    pids = {status.name: status.pid for status in stack.status()}
    said: list[tuple[str, str]] = []
    stack.up(lambda component, message: said.append((component, message)))
    assert {status.name: status.pid for status in stack.status()} == pids
    assert sorted(said) == sorted((name, "already running") for name in pids)


def test_custom_search_attributes_registered(stack: Stack, settings: Settings) -> None:
    async def names() -> dict[str, int]:
        from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

        client = await connect(settings.temporal_target)
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=settings.temporal_namespace)
        )
        return dict(response.custom_attributes)

    registered = asyncio.run(names())
    for name in ("CorrelationId", "TenantId", "OrderStatus"):
        assert name in registered, registered
    assert set(SEARCH_ATTRIBUTES) <= set(registered)


def test_restart_keeps_topics_and_rows(stack: Stack, settings: Settings, unique: str) -> None:
    topic = f"cloud-factory.test.restart-{unique}.v1"
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    for future in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
        future.result(15)
    with psycopg.connect(settings.libpq_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS stack_restart_probe (token text PRIMARY KEY)")
        conn.execute("INSERT INTO stack_restart_probe VALUES (%s)", (unique,))

    stack.down()
    assert all(status.state is ComponentState.STOPPED for status in stack.status())
    stack.up()

    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    assert topic in admin.list_topics(timeout=15).topics
    with psycopg.connect(settings.libpq_dsn) as conn:
        assert conn.execute("SELECT 1 FROM stack_restart_probe WHERE token = %s", (unique,)).fetchone()


def test_busy_port_is_a_clear_error(stack: Stack, settings: Settings, tmp_path: Path) -> None:
    # A second stack whose Postgres would land on the running Kafka's port.
    other = Settings(state_dir=tmp_path / "state", pg_port=settings.kafka_port)
    with pytest.raises(StackError,
                       match=rf"postgres: port 127\.0\.0\.1:{settings.kafka_port} is already in use"):
        Stack(other).up()


def test_missing_java_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    other = Settings(state_dir=tmp_path / "state")
    with pytest.raises(StackError, match=r"kafka: `java` not found on PATH"):
        Stack(other).up()


def test_component_that_cannot_start_names_its_log(stack: Stack, settings: Settings, tmp_path: Path) -> None:
    other = Settings(state_dir=tmp_path / "state", kafka_heap="not-a-size", kafka_port=39092,
                     kafka_controller_port=39093)
    kafka_home = other.state_dir / "kafka"
    kafka_home.mkdir(parents=True)
    real_lib = next((settings.state_dir / "kafka").glob("lib-*"))
    os.symlink(real_lib, kafka_home / real_lib.name)  # reuse the jars; no second download
    kafka = Stack(other).components[-1]
    assert kafka.name == "kafka"
    with pytest.raises(StackError) as failure:
        kafka.prepare()
    message = str(failure.value)
    assert message.startswith("kafka: ")
    assert str(other.state_dir / "logs" / "kafka.log") in message
    assert "\n" not in message
