"""Outbox retention on the real PostgreSQL: rows published longer ago than the retention go, recent
published rows and pending rows (however old) stay — through `purge_published`, a running relay's
periodic purge, and `cloud-factory outbox purge` (retention from `CF_OUTBOX_RETENTION_H` or
`--older-than-h`).

The first two use their own outbox table (schema `outbox_retention_<unique>`); the CLI test works on
Identity's real outbox with published rows only, recognising its own by event id.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, MetaData, Table, select, text

from core.db import engine_for, ensure_schema
from core.settings import Settings
from messaging.outbox import OutboxRecord, OutboxRelay, enqueue, outbox_table, purge_published
from messaging.wiring import producer_from
from services.identity.tables import metadata as identity_metadata
from services.identity.tables import outbox as identity_outbox
from tests.support.worker_process import CLI

pytestmark = pytest.mark.stack

WEEK = dt.timedelta(hours=168)


@pytest.fixture
def outbox(stack, settings: Settings, unique: str) -> Iterator[tuple[Engine, Table]]:
    engine = engine_for(settings.dsn)
    table = outbox_table(MetaData(schema=f"outbox_retention_{unique}"))
    ensure_schema(engine, table.metadata)
    yield engine, table
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{table.schema}" CASCADE'))


def _row(engine: Engine, table: Table, topic: str, *, age_h: float, published_age_h: float | None) -> str:
    """One outbox row created `age_h` ago, published `published_age_h` ago (None: still pending)."""
    event_id = uuid.uuid4()
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        row_id = enqueue(
            conn,
            table,
            OutboxRecord(
                event_id, "test.retention", topic, b"k", b"v", [("x-cf-event-id", str(event_id).encode())]
            ),
        )
        published = None if published_age_h is None else now - dt.timedelta(hours=published_age_h)
        conn.execute(
            table.update()
            .where(table.c.id == row_id)
            .values(created_at=now - dt.timedelta(hours=age_h), published_at=published)
        )
    return str(event_id)


def _present(engine: Engine, table: Table, event_ids: list[str]) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(table.c.event_id).where(table.c.event_id.in_(event_ids))).scalars())


def test_purge_deletes_only_rows_published_before_the_retention(outbox, unique: str) -> None:
    engine, table = outbox
    topic = f"cf-test-retention-{unique}"
    old = [_row(engine, table, topic, age_h=200, published_age_h=169) for _ in range(3)]
    recent = _row(engine, table, topic, age_h=200, published_age_h=167)
    pending = _row(engine, table, topic, age_h=500, published_age_h=None)
    assert purge_published(engine, table, WEEK, batch_size=2) == 3  # in batches, until none is left
    assert _present(engine, table, [*old, recent, pending]) == {recent, pending}
    assert purge_published(engine, table, WEEK) == 0
    with pytest.raises(ValueError, match="negative"):
        purge_published(engine, table, -WEEK)


def test_a_running_relay_purges_periodically(settings: Settings, outbox, unique: str) -> None:
    engine, table = outbox
    topic = f"cf-test-retention-{unique}"
    first = _row(engine, table, topic, age_h=300, published_age_h=200)
    pending = _row(engine, table, topic, age_h=300, published_age_h=None)  # old, but never sent yet
    relay = OutboxRelay(
        engine, table, producer_from(settings, fallback=False), retention=WEEK, purge_every_s=0.5
    )
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while first in _present(engine, table, [first]) or relay.pending():
            assert time.monotonic() < deadline, (
                "the relay neither purged the old row nor sent the pending one"
            )
            time.sleep(0.1)
        later = _row(engine, table, topic, age_h=300, published_age_h=200)  # the next purge takes it
        while later in _present(engine, table, [later]):
            assert time.monotonic() < deadline, "the relay purged only once"
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)
    assert _present(engine, table, [first, pending, later]) == {pending}  # sent just now: kept


def test_cli_purge_uses_the_configured_retention(stack, settings: Settings, unique: str) -> None:
    engine = engine_for(settings.dsn)
    ensure_schema(engine, identity_metadata)
    topic = f"cf-test-retention-{unique}"
    old = _row(engine, identity_outbox, topic, age_h=60, published_age_h=50)
    recent = _row(engine, identity_outbox, topic, age_h=60, published_age_h=30)
    # No pending row here: Identity's relays (other tests' workers) would try to send it.
    try:
        result = subprocess.run(
            [CLI, "outbox", "purge", "--service", "identity"],
            env={**os.environ, "CF_OUTBOX_RETENTION_H": "40"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "identity:" in result.stdout and "over 40 h ago deleted" in result.stdout
        assert _present(engine, identity_outbox, [old, recent]) == {recent}

        result = subprocess.run(
            [CLI, "outbox", "purge", "--service", "identity", "--older-than-h", "20"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert _present(engine, identity_outbox, [recent]) == set()

        refused = subprocess.run(
            [CLI, "outbox", "purge", "--service", "billing"], capture_output=True, text=True, timeout=60
        )
        assert refused.returncode == 2 and "'billing' has no outbox" in refused.stderr
    finally:
        with engine.begin() as conn:
            conn.execute(identity_outbox.delete().where(identity_outbox.c.event_id.in_([old, recent])))
