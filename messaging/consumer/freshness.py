"""Refusing old records: a captured record sent again long after the fact is a replay, not news.

Idempotency keys catch a redelivery while they live (24 h); past that, a replayed record would be
handled afresh. So every record must have been signed within a window (`CF_MAX_EVENT_AGE_H`, one
week by default): its age is measured from the signed `x-cf-signed-at` (part of the signature, so it
cannot be changed), or from the envelope's `occurredAt` for records of earlier releases that carry
no signed time. A signed time more than five minutes ahead is refused as well (it would never age
out). An operator's `dlq redrive` re-signs a record, which makes it fresh again.
"""

from __future__ import annotations

import time

import schemas

__all__ = ["CLOCK_SKEW_S", "DEFAULT_MAX_EVENT_AGE_S", "stale_reason"]

DEFAULT_MAX_EVENT_AGE_S = 7 * 24 * 3600.0
#: How far in the future a signed time may be (clocks drift); later ones would never age out.
CLOCK_SKEW_S = 300.0


def stale_reason(envelope: schemas.Envelope, check: schemas.SignatureCheck | None, max_age_s: float,
                 *, now: float | None = None) -> str | None:
    """Why the record is too old to handle, or None when it is within the window."""
    if check is not None and check.ok and check.signed_at_ms is not None:
        basis, at = "signed", check.signed_at_ms / 1000
    else:
        basis, at = "dated (occurredAt)", envelope.occurred_at.timestamp()
    age = (time.time() if now is None else now) - at
    if age < -CLOCK_SKEW_S:
        return (f"record {basis} {_span(-age)} in the future (more than {_span(CLOCK_SKEW_S)} of clock "
                "skew): refused, as it would never age out of the replay window")
    if age <= max_age_s:
        return None
    return (f"record {basis} {_span(age)} ago, outside the {_span(max_age_s)} window (CF_MAX_EVENT_AGE_H): "
            "refused as a possible replay; `cloud-factory dlq redrive` re-signs it if it is genuine")


def _span(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.0f} s"
