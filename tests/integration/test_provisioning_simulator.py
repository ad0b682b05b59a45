"""The simulated provider's hold: the hook the saga tests use to act while a step is under way.

A create held at a step waits until the hold is released (never returning earlier), marks when it
began waiting, and gives up waiting after the hold's bound, so a forgotten release cannot hang a
worker for ever.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import select

from core.db import engine_for
from core.settings import Settings
from services.provisioning.simulator import SimulatedProvider, held_since, inject_fault, release_fault
from services.provisioning.tables import cloud

pytestmark = pytest.mark.stack


def _create_in_thread(
    provider: SimulatedProvider, order_id: uuid.UUID
) -> tuple[threading.Thread, list[float]]:
    done: list[float] = []

    def create() -> None:
        provider.create(uuid.uuid4(), order_id, "disk", "volume", "eu-central")
        done.append(time.monotonic())

    thread = threading.Thread(target=create, daemon=True)
    thread.start()
    return thread, done


def test_a_held_create_waits_for_its_release(stack, settings: Settings) -> None:
    engine = engine_for(settings.dsn)
    order_id = uuid.uuid4()
    inject_fault(engine, order_id, "disk", "hold", delay_ms=120_000)
    assert held_since(engine, order_id, "disk") is None  # armed, but no create has reached it
    thread, done = _create_in_thread(SimulatedProvider(engine, latency_s=0), order_id)
    deadline = time.monotonic() + 30
    while held_since(engine, order_id, "disk") is None:
        assert time.monotonic() < deadline, "the create never reached the hold"
        time.sleep(0.02)
    # Held: the create has not finished and has not reached the provider's books.
    thread.join(0.5)
    assert done == [] and thread.is_alive()
    with engine.connect() as conn:
        assert conn.execute(select(cloud.c.name).where(cloud.c.order_id == order_id)).all() == []
    released = time.monotonic()
    release_fault(engine, order_id, "disk")
    thread.join(30)
    assert len(done) == 1 and done[0] >= released
    with engine.connect() as conn:
        names = conn.execute(select(cloud.c.name).where(cloud.c.order_id == order_id)).scalars().all()
    assert names == ["disk"]


def test_a_forgotten_hold_ends_after_its_bound(stack, settings: Settings) -> None:
    engine = engine_for(settings.dsn)
    order_id = uuid.uuid4()
    inject_fault(engine, order_id, "disk", "hold", delay_ms=600)
    started = time.monotonic()
    SimulatedProvider(engine, latency_s=0).create(uuid.uuid4(), order_id, "disk", "volume", "eu-central")
    assert time.monotonic() - started >= 0.6


def test_a_hold_needs_a_bound(stack, settings: Settings) -> None:
    with pytest.raises(ValueError, match="hold needs delay_ms > 0"):
        inject_fault(engine_for(settings.dsn), uuid.uuid4(), "disk", "hold")
