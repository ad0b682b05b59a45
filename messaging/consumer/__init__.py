"""The at-least-once consumer (`EventConsumer`), split by job.

- `runtime`: the poll loop — fetch a batch, process it, commit exactly the finished offsets, rewind
  a batch that failed as a whole, rebalancing, graceful stop (`run_until_signalled`);
- `reading`: one record's header scan, signature check, decode + upcast, signer and freshness
  (`freshness`) checks, and which handlers serve it;
- `claims`: the batch's idempotency keys, claimed and stored with one statement each, leases held
  while the handlers run;
- `dispatch`: the handler table and calling each handler with its `HandlerContext` in its span;
- `handling`: one read record's way to its end — dispatched, or its failure routed (shared with
  the in-memory transport, `messaging.testing`);
- `retries`: in-place retries — pause, rewind and resume one partition after its backoff;
- `deadlettering`: what a failure becomes (retry, dead letter, parked record);
- `health`: the snapshot the worker heartbeat reports; `inflight`: a record on its way through
  a batch; `gctune`: GC settings for consumer processes.

Services import `HandlerContext` and `HandlerSpec` from `messaging`, not from here.
"""

from messaging.consumer.health import (
    DEFAULT_PARK_AFTER_S,
    DEFAULT_STUCK_AFTER_S,
    ConsumerHealth,
    StuckPartition,
)
from messaging.consumer.runtime import EventConsumer, run_until_signalled

__all__ = [
    "DEFAULT_PARK_AFTER_S",
    "DEFAULT_STUCK_AFTER_S",
    "ConsumerHealth",
    "EventConsumer",
    "StuckPartition",
    "run_until_signalled",
]
