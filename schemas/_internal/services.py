"""The seven domain services and the retry profiles their consumers apply."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import Enum, StrEnum

__all__ = ["RetryPolicy", "RetryProfile", "Service"]


class Service(StrEnum):
    """A domain service; also the namespace (`order.` …) of the event types it owns."""

    ORDER = "order"
    PROVISIONING = "provisioning"
    BILLING = "billing"
    NOTIFICATION = "notification"
    IDENTITY = "identity"
    PRODUCT = "product"
    SUPPORT = "support"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff for a consumer's handler before the record goes to the DLQ."""

    max_attempts: int
    initial_backoff: dt.timedelta
    max_backoff: dt.timedelta
    multiplier: float = 2.0

    def backoff(self, attempt: int) -> dt.timedelta:
        """Delay before retry number `attempt` (1-based), capped at `max_backoff`."""
        if attempt < 1:
            raise ValueError("attempt is 1-based")
        cap = self.max_backoff.total_seconds()
        seconds = self.initial_backoff.total_seconds() * self.multiplier ** min(attempt - 1, 64)
        return dt.timedelta(seconds=min(seconds, cap))


class RetryProfile(Enum):
    """How hard a consumer tries before dead-lettering an event.

    CRITICAL: money and infrastructure (payments, refunds, provisioning) — losing one costs real money.
    DEFAULT: order lifecycle and everything else. NON_CRITICAL: notification outcomes — a late or lost
    one is cheaper than blocking the partition.
    """

    CRITICAL = "critical"
    DEFAULT = "default"
    NON_CRITICAL = "non_critical"

    @property
    def policy(self) -> RetryPolicy:
        return _POLICIES[self]


_POLICIES = {
    RetryProfile.CRITICAL: RetryPolicy(12, dt.timedelta(seconds=1), dt.timedelta(minutes=5)),
    RetryProfile.DEFAULT: RetryPolicy(6, dt.timedelta(milliseconds=500), dt.timedelta(seconds=30)),
    RetryProfile.NON_CRITICAL: RetryPolicy(3, dt.timedelta(seconds=1), dt.timedelta(seconds=10)),
}
