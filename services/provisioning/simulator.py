"""The provider adapter: a local simulator of a cloud API that can be told to fail.

Creates are idempotent on the resource id (a real provider's idempotency key), so a handler that
crashed after the call and runs again never creates a second resource. Faults are injected per
order and step (`inject_fault`): `permanent` fails every call, `transient` fails `times` calls then
succeeds, `delete` makes deletion fail, `slow` delays each create by `delay_ms`, and `hold` keeps each
create waiting until `release_fault` (at most `delay_ms`). A hold is what a test uses to act while a
step is provably under way (`held_since`), instead of racing a fixed delay with the clock.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from core.db import ensure_schema_once
from services.provisioning.tables import cloud, faults, metadata

__all__ = [
    "FAULT_MODES",
    "PermanentProviderError",
    "ProviderError",
    "SimulatedProvider",
    "TransientProviderError",
    "clear_faults",
    "held_since",
    "inject_fault",
    "release_fault",
]

FAULT_MODES = ("permanent", "transient", "delete", "slow", "hold")
HOLD_POLL_S = 0.05


class ProviderError(Exception):
    """The provider refused; `code` is a machine-readable ErrorCode."""

    retryable = False

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class TransientProviderError(ProviderError):
    retryable = True


class PermanentProviderError(ProviderError):
    retryable = False


def inject_fault(
    engine: Engine, order_id: uuid.UUID | str, step: str, mode: str, *, times: int = 1, delay_ms: int = 0
) -> None:
    """Tell the simulator to misbehave for one order at one step (resource name)."""
    if mode not in FAULT_MODES:
        raise ValueError(f"fault mode {mode!r} is not one of {', '.join(FAULT_MODES)}")
    if times < 1 or delay_ms < 0:
        raise ValueError("inject_fault: times must be ≥ 1 and delay_ms ≥ 0")
    if mode == "hold" and delay_ms <= 0:
        raise ValueError("inject_fault: a hold needs delay_ms > 0, the longest it may keep a create waiting")
    ensure_schema_once(engine, metadata)  # armed before any provisioning worker created the tables
    statement = insert(faults).values(
        order_id=uuid.UUID(str(order_id)), step=step, mode=mode, remaining=times, delay_ms=delay_ms
    )
    statement = statement.on_conflict_do_update(
        constraint="faults_pkey", set_={"remaining": times, "delay_ms": delay_ms}
    )
    with engine.begin() as conn:
        conn.execute(statement)


def _one(order_id: uuid.UUID | str, step: str, mode: str):  # noqa: ANN202 - a SQL condition
    return and_(faults.c.order_id == uuid.UUID(str(order_id)), faults.c.step == step, faults.c.mode == mode)


def release_fault(engine: Engine, order_id: uuid.UUID | str, step: str, mode: str = "hold") -> None:
    """Lift one fault (by default the hold on `step`): a held create goes on within a poll interval."""
    with engine.begin() as conn:
        conn.execute(delete(faults).where(_one(order_id, step, mode)))


def held_since(engine: Engine, order_id: uuid.UUID | str, step: str) -> dt.datetime | None:
    """When a create of `step` began waiting on its hold (None: no create has reached it yet)."""
    where = _one(order_id, step, "hold")
    with engine.connect() as conn:
        return conn.execute(select(faults.c.held_at).where(where)).scalar_one_or_none()


def clear_faults(engine: Engine, order_id: uuid.UUID | str) -> None:
    """The provider behaves again for this order (capacity is back, the outage is over)."""
    with engine.begin() as conn:
        conn.execute(delete(faults).where(faults.c.order_id == uuid.UUID(str(order_id))))


@dataclass
class SimulatedProvider:
    engine: Engine
    latency_s: float = 0.02

    def _fault(self, order_id: uuid.UUID, step: str, mode: str) -> tuple[int, int] | None:
        """(remaining, delay_ms) of an active fault, consuming one transient occurrence."""
        where = and_(faults.c.order_id == order_id, faults.c.step == step, faults.c.mode == mode)
        with self.engine.begin() as conn:
            row = conn.execute(
                select(faults.c.remaining, faults.c.delay_ms).where(where).with_for_update()
            ).first()
            if row is None or row.remaining <= 0:
                return None
            if mode == "transient":
                conn.execute(update(faults).where(where).values(remaining=faults.c.remaining - 1))
            return row.remaining, row.delay_ms

    def _wait_while_held(self, order_id: uuid.UUID, step: str) -> None:
        """Block while a hold on `step` stands, marking when the wait began; at most its `delay_ms`."""
        where = and_(faults.c.order_id == order_id, faults.c.step == step, faults.c.mode == "hold")
        with self.engine.begin() as conn:
            bound_ms = conn.execute(
                update(faults).where(where).values(held_at=func.now()).returning(faults.c.delay_ms)
            ).scalar_one_or_none()
        if bound_ms is None:
            return
        deadline = time.monotonic() + bound_ms / 1000
        while time.monotonic() < deadline and self._fault(order_id, step, "hold") is not None:
            time.sleep(HOLD_POLL_S)

    def create(self, resource_id: uuid.UUID, order_id: uuid.UUID, name: str, kind: str, region: str) -> str:
        """Create (or find) the resource; returns its endpoint URL."""
        slow = self._fault(order_id, name, "slow")
        time.sleep(self.latency_s + (slow[1] / 1000 if slow else 0))
        self._wait_while_held(order_id, name)
        if self._fault(order_id, name, "permanent"):
            raise PermanentProviderError("CAPACITY_EXHAUSTED", f"no capacity for {kind} {name} in {region}")
        if self._fault(order_id, name, "transient"):
            raise TransientProviderError("PROVIDER_UNAVAILABLE", f"provider timed out creating {name}")
        with self.engine.begin() as conn:
            conn.execute(
                insert(cloud)
                .values(resource_id=resource_id, order_id=order_id, name=name, kind=kind)
                .on_conflict_do_nothing(index_elements=["resource_id"])
            )
        scheme = "ssh" if kind == "vm" else "https"
        return f"{scheme}://{name}-{str(resource_id)[:8]}.{region}.cloud-factory.example"

    def delete(self, resource_id: uuid.UUID, order_id: uuid.UUID, name: str) -> None:
        """Delete the resource; deleting what is already gone (or never existed) succeeds."""
        time.sleep(self.latency_s)
        if self._fault(order_id, name, "delete"):
            raise PermanentProviderError("DELETE_REFUSED", f"provider refused to delete {name}")
        with self.engine.begin() as conn:
            conn.execute(
                update(cloud)
                .where(cloud.c.resource_id == resource_id, cloud.c.deleted_at.is_(None))
                .values(deleted_at=func.now())
            )
