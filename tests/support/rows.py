"""Counting a service's rows per order, the measure of "no duplicate effect"."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, Table, func, select

__all__ = ["rows_per_order"]


def rows_per_order(engine: Engine, table: Table, order_ids: list[uuid.UUID],
                   *where: object) -> dict[uuid.UUID, int]:
    """How many rows of `table` (matching `where`) each order has; 0 for an order with none."""
    query = (select(table.c.order_id, func.count()).where(table.c.order_id.in_(order_ids), *where)
             .group_by(table.c.order_id))
    with engine.connect() as conn:
        found = dict(conn.execute(query).all())
    return {order_id: found.get(order_id, 0) for order_id in order_ids}
