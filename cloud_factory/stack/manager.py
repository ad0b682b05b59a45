"""Brings the local stack up, reports on it and takes it down again.

`up` is idempotent: a healthy component is left alone, a stopped one is prepared and launched, and
every launched one is awaited until it answers its protocol. `down` only stops processes whose pid
files `up` wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from cloud_factory.stack._component import Component, ComponentState, ComponentStatus
from cloud_factory.stack._process import StackError, pid_alive, terminate
from cloud_factory.stack.kafka import KafkaComponent, kafka_nodes, other_layout_pids
from cloud_factory.stack.postgres import PostgresComponent
from cloud_factory.stack.temporal import TemporalComponent
from core.settings import Settings, get_settings
from messaging.signing_keys import ensure_development_keys

__all__ = ["Stack"]

Progress = Callable[[str, str], None]


def _quiet(component: str, message: str) -> None:
    """Default progress sink: say nothing."""


class Stack:
    """The three real servers the platform needs, on loopback, with state under `settings.state_dir`
    (Kafka as one broker or as a cluster of `CF_KAFKA_BROKERS`)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        # Launch order: the quick ones first so their start overlaps Kafka's JVM warm-up.
        self.components: list[Component] = [
            PostgresComponent(self.settings),
            TemporalComponent(self.settings),
            *kafka_nodes(self.settings),
        ]

    def status(self) -> list[ComponentStatus]:
        return [component.status() for component in self.components]

    def up(self, progress: Progress = _quiet) -> list[ComponentStatus]:
        for component in self.components:
            component.check_prerequisites()
        others = other_layout_pids(self.settings)
        if others:
            raise StackError(
                f"kafka: {', '.join(sorted(others))} of another broker count "
                f"{'is' if len(others) == 1 else 'are'} "
                f"running from {self.settings.state_dir}; run `cloud-factory stack down` first, then "
                f"`stack up` with CF_KAFKA_BROKERS={self.settings.kafka_brokers}")
        keys = self.settings.development_keys_path
        existed = keys.is_file()
        if ensure_development_keys(self.settings) is not None and not existed:
            progress("keys", f"wrote development signing keys, one per service, to {keys}")
        waiting: list[Component] = []
        for component in self.components:
            current = component.status()
            if current.state is ComponentState.HEALTHY:
                progress(component.name, "already running")
                continue
            if current.state is ComponentState.UNHEALTHY:
                progress(component.name, "running, waiting until it answers")
                waiting.append(component)
                continue
            component.ensure_ports_free()
            progress(component.name, "preparing")
            component.prepare()
            progress(component.name, "starting")
            component.launch()
            waiting.append(component)
        for component in waiting:
            self._await_healthy(component, progress)
            component.after_ready()
            progress(component.name, "healthy")
        return self.status()

    def _await_healthy(self, component: Component, progress: Progress) -> None:
        started = time.monotonic()
        while True:
            pid = component.pid()
            if pid is None or not pid_alive(pid):
                raise component.failure("exited during start-up")
            if component.probe():
                return
            waited = time.monotonic() - started
            if waited > component.start_timeout:
                raise component.failure(f"not healthy after {component.start_timeout:.0f}s")
            progress(component.name, f"waiting for it to answer ({waited:.0f}s)")
            time.sleep(0.5)

    def down(self, progress: Progress = _quiet) -> None:
        """Stop every component, Kafka's nodes all at once: stopped one by one, the last two would
        each wait for a controller quorum that is already gone."""
        def stop(component: Component) -> None:
            progress(component.name, "stopping")
            stopped = component.stop()
            progress(component.name, "stopped" if stopped else "was not running (nothing to stop)")

        kafka = [c for c in self.components if isinstance(c, KafkaComponent)]
        with ThreadPoolExecutor(max_workers=max(1, len(kafka))) as pool:
            list(pool.map(stop, kafka))
        for component in reversed(self.components):
            if component not in kafka:
                stop(component)
        for name, pid in other_layout_pids(self.settings).items():
            progress(name, "stopping (started with another broker count)")
            terminate(pid)
            (self.settings.state_dir / "run" / f"{name}.pid").unlink(missing_ok=True)
            progress(name, "stopped")
