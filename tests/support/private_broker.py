"""A Kafka broker of one test's own, to stop and restart: the shared broker is never touched.

It has its own state directory, ports and env segment, reuses the stack's jars (no second download)
and the stack's per-service signing keys, and spools into its own directory under `tmp_path`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_factory.stack.kafka import KafkaComponent
from cloud_factory.stack.ports import free_port
from core.settings import Settings
from tests.support.servers import launch_and_wait

__all__ = ["own_broker", "private_broker", "start_broker"]


def start_broker(kafka: KafkaComponent, timeout: float = 90) -> None:
    """Launch (or relaunch) the broker and wait until it answers; fail naming its log."""
    launch_and_wait(kafka, timeout=timeout, what="private broker")


@contextlib.contextmanager
def own_broker(settings: Settings, directory: Path, env: str) -> Iterator[tuple[Settings, KafkaComponent]]:
    """A broker of its own under `directory` (state, spool), running until the block ends: the
    settings that reach it, and the broker to stop and start."""
    own = settings.model_copy(update={"state_dir": directory / "state", "kafka_port": free_port(),
                                      "kafka_controller_port": free_port(), "kafka_heap": "384m",
                                      "env": env, "fallback_dir": directory / "fallback",
                                      "signing_keys_file": settings.development_keys_path})
    home = own.state_dir / "kafka"
    home.mkdir(parents=True)
    real_lib = next((settings.state_dir / "kafka").glob("lib-*"))
    os.symlink(real_lib, home / real_lib.name)  # reuse the jars: no second download
    kafka = KafkaComponent(own)
    kafka.prepare()
    start_broker(kafka)
    try:
        yield own, kafka
    finally:
        kafka.stop()


@pytest.fixture
def private_broker(stack, settings: Settings, tmp_path: Path,
                   unique: str) -> Iterator[tuple[Settings, KafkaComponent]]:
    with own_broker(settings, tmp_path, f"t{unique}") as running:
        yield running
