"""The payment-gateway adapter: a simulated PSP, idempotent per operation id, failure-injectable.

`inject_gateway_fault(order, "refund", "permanent")` makes every refund of that order fail;
`transient` fails `times` calls then succeeds (Billing's consumer retries those in place).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, select, update
from sqlalchemy.dialects.postgresql import insert

from services.billing.tables import gateway_faults, psp_operations

__all__ = [
    "GatewayDeclined",
    "GatewayUnavailable",
    "SimulatedGateway",
    "clear_gateway_faults",
    "inject_gateway_fault",
]

OPERATIONS = ("capture", "refund")


class GatewayDeclined(Exception):
    """The PSP said no for good; `code` is an ErrorCode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class GatewayUnavailable(Exception):
    """The PSP did not answer; try again."""


def inject_gateway_fault(
    engine: Engine, order_id: uuid.UUID | str, operation: str, mode: str = "permanent", *, times: int = 1
) -> None:
    if operation not in OPERATIONS or mode not in ("permanent", "transient"):
        raise ValueError(
            f"gateway fault needs operation in {OPERATIONS} and mode permanent|transient, "
            f"got {operation!r}/{mode!r}"
        )
    statement = insert(gateway_faults).values(
        order_id=uuid.UUID(str(order_id)), operation=operation, mode=mode, remaining=times
    )
    with engine.begin() as conn:
        conn.execute(
            statement.on_conflict_do_update(constraint="gateway_faults_pkey", set_={"remaining": times})
        )


def clear_gateway_faults(engine: Engine, order_id: uuid.UUID | str) -> None:
    """The gateway accepts this order's operations again (the card works now)."""
    with engine.begin() as conn:
        conn.execute(delete(gateway_faults).where(gateway_faults.c.order_id == uuid.UUID(str(order_id))))


@dataclass
class SimulatedGateway:
    engine: Engine

    def _check(self, order_id: uuid.UUID, operation: str) -> None:
        with self.engine.begin() as conn:
            for mode in ("permanent", "transient"):
                where = and_(
                    gateway_faults.c.order_id == order_id,
                    gateway_faults.c.operation == operation,
                    gateway_faults.c.mode == mode,
                )
                remaining = conn.execute(
                    select(gateway_faults.c.remaining).where(where).with_for_update()
                ).scalar()
                if not remaining:
                    continue
                if mode == "permanent":
                    raise GatewayDeclined("PSP_DECLINED", f"the gateway declined the {operation}")
                conn.execute(update(gateway_faults).where(where).values(remaining=remaining - 1))
                raise GatewayUnavailable(f"the gateway timed out on the {operation}")

    def execute(self, operation_id: uuid.UUID, order_id: uuid.UUID, operation: str, amount_minor: int) -> str:
        """Capture or refund once per operation id; returns the PSP reference."""
        self._check(order_id, operation)
        with self.engine.begin() as conn:
            conn.execute(
                insert(psp_operations)
                .values(
                    operation_id=operation_id, order_id=order_id, kind=operation, amount_minor=amount_minor
                )
                .on_conflict_do_nothing(index_elements=["operation_id"])
            )
        return f"psp_{operation}_{operation_id.hex[:16]}"
