"""One read record's way to its end in a batch: its handlers called, or its failure routed.

Shared by the poll loop (`runtime`) and the in-memory transport (`messaging.testing`), so a handler
unit test sees the very decisions the Kafka consumer makes: the claim statement's failure retries the
record, a handler's error is classified and retried in place or dead-lettered, a finished record
releases its partition.
"""

from __future__ import annotations

import enum

from messaging.consumer.claims import BatchClaims
from messaging.consumer.deadlettering import FailureRouter
from messaging.consumer.dispatch import Dispatcher, HandlerFailed
from messaging.consumer.inflight import InFlight
from messaging.consumer.retries import InPlaceRetries

__all__ = ["Finish", "finish_record"]


class Finish(enum.StrEnum):
    """How a record left `finish_record`."""

    HANDLED = "handled"  # every handler ran (or skipped a duplicate), or nobody here serves it
    ROUTED = "routed"  # dead-lettered or parked: its offset may be committed like a handled one's
    RETRY = "retry"  # waits for an in-place retry: its partition stops here


# Module names for the members: an enum member read through its class costs ~70 ns, twice a record.
_HANDLED, _ROUTED, _RETRY = Finish.HANDLED, Finish.ROUTED, Finish.RETRY


def finish_record(item: InFlight, claims: BatchClaims, dispatcher: Dispatcher, retries: InPlaceRetries,
                  failures: FailureRouter) -> Finish:
    """Dispatch `item` (unless nobody here serves it) within the batch's `claims`; route a failure."""
    try:
        # `item.served`, read in place: else no handler here, or `accept` refused it
        if item.specs or item.error is not None:
            if claims.error is not None:
                raise HandlerFailed(claims.error, None)
            dispatcher.handle(item, claims, retries.attempt(item))
    except HandlerFailed as failure:
        return _ROUTED if failures.route(item, failure) else _RETRY
    retries.handled(item)
    return _HANDLED
