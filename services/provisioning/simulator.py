"""The provider adapter: a local simulator of a cloud API that can be told to fail.

Creates are idempotent on the resource id (a real provider's idempotency key), so a handler that
crashed after the call and runs again never creates a second resource. Faults are injected per
order and step (`inject_fault`): `permanent` fails every call, `transient` fails `times` calls then
succeeds, `delete` makes deletion fail, `slow` delays each create by `delay_ms`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from services.provisioning.tables import cloud, faults

__all__ = [
    "FAULT_MODES",
    "PermanentProviderError",
    "ProviderError",
    "SimulatedProvider",
    "TransientProviderError",
    "clear_faults",
    "inject_fault",
]

FAULT_MODES = ("permanent", "transient", "delete", "slow")


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
    statement = insert(faults).values(
        order_id=uuid.UUID(str(order_id)), step=step, mode=mode, remaining=times, delay_ms=delay_ms
    )
    statement = statement.on_conflict_do_update(
        constraint="faults_pkey", set_={"remaining": times, "delay_ms": delay_ms}
    )
    with engine.begin() as conn:
        conn.execute(statement)


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

    def create(self, resource_id: uuid.UUID, order_id: uuid.UUID, name: str, kind: str, region: str) -> str:
        """Create (or find) the resource; returns its endpoint URL."""
        slow = self._fault(order_id, name, "slow")
        time.sleep(self.latency_s + (slow[1] / 1000 if slow else 0))
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
