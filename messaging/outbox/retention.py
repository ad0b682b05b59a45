"""Deletes outbox rows published longer ago than the retention.

The outbox is a buffer, not an archive: once the broker acknowledged a row, Kafka holds the event.
Published rows are kept a while (to look up what was sent, and when) and then removed in small
batches, so the purge never holds many locks at once. Pending rows are never touched, however old.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, Table, delete, func, select

__all__ = ["purge_published"]


def purge_published(engine: Engine, table: Table, older_than: dt.timedelta, *, batch_size: int = 5000) -> int:
    """Delete rows of `table` published more than `older_than` ago; returns how many went."""
    if older_than < dt.timedelta(0):
        raise ValueError(f"the retention must not be negative, got {older_than}")
    t = table
    total = 0
    while True:
        with engine.begin() as conn:
            batch = (
                select(t.c.id)
                .where(t.c.published_at < func.now() - older_than)
                .order_by(t.c.id)
                .limit(batch_size)
                .with_for_update(skip_locked=True)  # a relay or another purge holds it: next time
                .scalar_subquery()
            )
            deleted = conn.execute(delete(t).where(t.c.id.in_(batch))).rowcount
        total += deleted
        if deleted < batch_size:
            return total
