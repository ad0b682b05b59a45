"""The CLI services' commands and workers with their outbox, on the real stack: a command's rows and
its event commit together (or not at all); with Kafka unreachable the command still succeeds, says
its event is queued, and a relay later publishes it exactly once; `cloud-factory worker
identity|product|support` relays, shows in the heartbeats and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from core.db import engine_for
from core.settings import Settings
from messaging.outbox import OutboxRelay
from messaging.wiring import keyring_from, producer_from
from services.common.commands import build_commands, flow_id
from services.common.emitter import service_event_id
from services.common.outbox_emitter import OutboxEmitter
from services.identity.commands import IdentityCommands
from services.identity.tables import metadata, outbox, users
from services.order.flow import read_flow
from tests.support.worker_process import CLI, start_workers
from workers.heartbeat import read_heartbeats

pytestmark = pytest.mark.stack

DEAD_KAFKA = {**os.environ, "CF_KAFKA_BOOTSTRAP": "127.0.0.1:1"}


def _outbox_row(settings: Settings, event_id: uuid.UUID) -> dict | None:
    with engine_for(settings.dsn).connect() as conn:
        row = conn.execute(select(outbox).where(outbox.c.event_id == str(event_id))).mappings().first()
    return None if row is None else dict(row)


def _register(tenant: str, email: str, env: dict[str, str] | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, "identity", "register", "--tenant", tenant, "--email", email, "--name", "Ada"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


class _SilentBroker:
    """A TCP listener that counts the connections it accepts and never says a word."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.address = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self.connections = 0
        self._accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                peer, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            self._accepted.append(peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for peer in self._accepted:
            peer.close()
        self._socket.close()


@contextmanager
def _silent_broker() -> Iterator[_SilentBroker]:
    broker = _SilentBroker()
    try:
        yield broker
    finally:
        broker.close()


def test_a_failing_command_leaves_neither_row_nor_event(stack, settings: Settings, unique: str) -> None:
    class Refusing(OutboxEmitter):
        def new(self, *args, **kwargs):  # the event is queued, then the command fails
            super().new(*args, **kwargs)
            raise RuntimeError("crash inside the command's transaction")

    commands = build_commands(settings, "identity", metadata, outbox, IdentityCommands)
    commands.emit = Refusing("identity", outbox, keyring_from(settings), env=settings.env)
    with pytest.raises(RuntimeError):
        commands.register(f"t{unique}", f"crash-{unique}@example.com", "Crash")
    [written] = commands.emit.written
    with engine_for(settings.dsn).connect() as conn:
        assert conn.execute(select(outbox.c.id).where(outbox.c.id == written)).first() is None
        assert conn.execute(select(users).where(users.c.tenant_id == f"t{unique}")).first() is None


def test_kafka_down_the_event_waits_in_the_outbox_and_is_published_once(
    stack, settings: Settings, unique: str
) -> None:
    since = int(time.time() * 1000) - 1000
    # "Kafka" accepts connections and never answers (worse than a closed port, which the command
    # detects at once): the inline relay attempt must give up on its own short bound, not wait out
    # the client's default timeouts (minutes) — the subprocess budget is far above the bound, far
    # below those defaults, so a slow machine cannot make this fail and a hang cannot pass.
    with _silent_broker() as broker:
        result = _register(f"t{unique}", f"down-{unique}@example.com",
                           {**DEAD_KAFKA, "CF_KAFKA_BOOTSTRAP": broker.address}, timeout=120)
        assert result.returncode == 0, result.stderr
        assert broker.connections >= 1, "the command never tried the broker"
    assert "queued in the identity outbox" in result.stderr
    user = uuid.UUID(result.stdout.strip().splitlines()[-1])
    event_id = service_event_id("identity", f"user/{user}/registered")
    with engine_for(settings.dsn).connect() as conn:
        row = conn.execute(select(users).where(users.c.user_id == user)).mappings().one()
    assert row["last_event_id"] == str(event_id)  # the domain row and its event committed together
    queued = _outbox_row(settings, event_id)
    assert queued is not None and queued["event_type"] == "identity.user-registered"

    # Kafka is back: a relay (ours, or any running identity worker) publishes it, exactly once.
    relay = OutboxRelay(engine_for(settings.dsn), outbox, producer_from(settings, fallback=False))
    deadline = time.monotonic() + 30
    while (_outbox_row(settings, event_id) or {}).get("published_at") is None:
        assert time.monotonic() < deadline, "the queued event was never published"
        relay.drain()
        time.sleep(0.2)
    relay.drain()
    records = read_flow(settings, str(flow_id("user", user)), ["identity.user-registered"], since)
    assert [r.envelope.event_id for r in records] == [event_id]
    assert records[0].signature_ok and records[0].envelope.data.email == f"down-{unique}@example.com"


@pytest.mark.parametrize("kind", ["identity", "product", "support"])
def test_worker_kind_relays_reports_health_and_stops_on_sigterm(
    stack, settings: Settings, unique: str, kind: str
) -> None:
    process = start_workers(settings, dict(os.environ), kind)
    try:
        [beat] = [b for b in read_heartbeats(settings.state_dir) if b.pid == process.pid]
        assert beat.kinds == [kind] and beat.healthy
        if kind == "identity":  # queued while Kafka looked down: the worker publishes it
            result = _register(f"t{unique}", f"w-{unique}@example.com", DEAD_KAFKA)
            assert result.returncode == 0 and "queued" in result.stderr
            user = uuid.UUID(result.stdout.strip().splitlines()[-1])
            event_id = service_event_id("identity", f"user/{user}/registered")
            deadline = time.monotonic() + 30
            while (_outbox_row(settings, event_id) or {}).get("published_at") is None:
                assert time.monotonic() < deadline, "the worker never published the queued event"
                time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
    assert code == 0
    assert not any(b.pid == process.pid for b in read_heartbeats(settings.state_dir))
