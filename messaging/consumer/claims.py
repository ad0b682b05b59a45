"""Idempotency claims of one batch: claimed with one statement before any handler runs, results
stored with one statement after, leases renewed in between.

A non-transactional handler's key is claimed up front (`ACQUIRED`, `DUPLICATE` or `BUSY`); a
transactional handler claims its key inside its own transaction instead (see `dispatch`). When the
claim itself fails (the database went away) every served record of the batch is retried in place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import schemas
from messaging.consumer.inflight import InFlight
from messaging.handlers import HandlerSpec
from messaging.idempotency import Claim, ClaimState, IdempotencyStore, KeyRequest, idempotency_key

__all__ = ["BatchClaims", "key_requests"]


def key_requests(envelope: schemas.Envelope, specs: Sequence[HandlerSpec]) -> list[KeyRequest]:
    """One key per handler of the record: the same event handled by two handlers is two jobs."""
    event_id, correlation_id = str(envelope.event_id), str(envelope.correlation_id)
    return [KeyRequest(idempotency_key(event_id, correlation_id, spec.name or ""), spec.name or "",
                       envelope.event_id, envelope.correlation_id) for spec in specs]


class BatchClaims:
    """What the batch's handlers may do with their keys, and what they did (stored by `settle`)."""

    __slots__ = ("acquired", "claims", "error", "failed", "store", "succeeded")

    def __init__(self, store: IdempotencyStore | None) -> None:
        self.store = store
        self.claims: dict[str, Claim] = {}
        self.error: Exception | None = None  # the claim statement's failure, if it failed
        self.acquired: list[str] = []
        self.succeeded: dict[str, Any] = {}  # key -> the handler's result
        self.failed: dict[str, str] = {}  # key -> why

    @classmethod
    def claim(cls, store: IdempotencyStore | None, items: Sequence[InFlight]) -> BatchClaims:
        batch = cls(store)
        if store is None:
            return batch
        leased = [request for item in items for spec, request in zip(item.specs, item.requests, strict=True)
                  if not spec.transactional]
        if not leased:
            return batch
        try:
            batch.claims = store.claim(leased)
        except Exception as exc:  # noqa: BLE001 - database away: every message retries in place
            batch.error = exc
        batch.acquired = [key for key, claim in batch.claims.items() if claim.state is ClaimState.ACQUIRED]
        return batch

    @contextmanager
    def held(self) -> Iterator[BatchClaims]:
        """The acquired leases are renewed while the handlers run, however long they take."""
        if not self.acquired:
            yield self
            return
        assert self.store is not None
        self.store.hold(self.acquired)
        try:
            yield self
        finally:
            self.store.drop(self.acquired)

    def settle(self) -> None:
        """Store results and failures; release the keys of records that were never handled (they are
        fetched again, behind a failed record of their partition)."""
        if self.store is None:
            return
        self.store.complete(self.succeeded)
        self.store.fail(self.failed)
        self.store.release(set(self.acquired) - self.succeeded.keys() - self.failed.keys())
