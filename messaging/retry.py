"""Retry profiles: how often and how patiently a consumer retries a message before dead-lettering.

`delay = initial × multiplier^(retryCount−1)`, capped at `max`. The profile of a message comes from
the catalog entry of its event type (`schemas.RetryProfile`); the numbers live here because they
are the runtime's behaviour, not part of the wire contract.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import schemas

__all__ = ["PROFILES", "PolicyLookup", "RetryPolicy", "policy_for", "policy_lookup"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`retries` retries after the first attempt, exponentially spaced."""

    retries: int
    initial: float
    max: float
    multiplier: float = 2.0

    def delay(self, retry_count: int) -> float:
        """Seconds to wait before retry number `retry_count` (1-based)."""
        if retry_count < 1:
            raise ValueError("retry_count is 1-based")
        return min(self.initial * self.multiplier ** min(retry_count - 1, 64), self.max)

    def allows(self, retry_count: int) -> bool:
        """May retry number `retry_count` run, or is the message due for the DLQ?"""
        return retry_count <= self.retries


PROFILES: dict[schemas.RetryProfile, RetryPolicy] = {
    # payment, provisioning: losing one costs real money
    schemas.RetryProfile.CRITICAL: RetryPolicy(retries=5, initial=0.5, max=60.0),
    # order lifecycle
    schemas.RetryProfile.DEFAULT: RetryPolicy(retries=3, initial=1.0, max=30.0),
    # notifications, logging: late is cheaper than a blocked partition
    schemas.RetryProfile.NON_CRITICAL: RetryPolicy(retries=2, initial=2.0, max=10.0),
}

PolicyLookup = Callable[[str | None], RetryPolicy]


def policy_for(event_type: str | None) -> RetryPolicy:
    """The policy of `event_type`'s catalog profile (DEFAULT for unknown or undecodable types)."""
    entry = schemas.catalog.get(event_type) if event_type else None
    return PROFILES[entry.retry_profile if entry else schemas.RetryProfile.DEFAULT]


def policy_lookup(retry_policy: RetryPolicy | PolicyLookup | None) -> PolicyLookup:
    """A consumer's `retry_policy` argument as a lookup: one fixed policy for every event type, a
    lookup as given, or (None) the catalog's profiles."""
    if isinstance(retry_policy, RetryPolicy):
        fixed = retry_policy
        return lambda _event_type: fixed
    return retry_policy or policy_for
