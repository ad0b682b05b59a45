"""The design's four outcomes of a dead-lettered record, decided from the record alone.

- **retry**: transient / resource-busy and fewer than `max_dlq_retries` DLQ round trips → after the
  profile's backoff, re-publish the original value and headers to the original topic (with
  `x-cf-dlq-retries` + 1; the consumers' idempotency keys make a second delivery harmless);
- **discard**: validation (corrupt data, invalid schema) → logged and abandoned, with an audit row;
- **manual review**: DLQ retries exhausted, or not-found / permission / inconsistency, or a record
  dead-lettered as a reference (too big for a DLQ record: re-feeding it automatically would only
  bring it back) → an incident row in PostgreSQL for a human (`cloud-factory dlq show|redrive|discard`);
- **alert**: more than the threshold of DLQ records for one original topic within an hour (decided
  per topic and hour by `processor.DlqProcessor`, not per record).

`redriven` is what an operator's `dlq redrive` records.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from messaging.dlq.letter import DeadLetter
from messaging.errors import ErrorClass
from messaging.retry import PolicyLookup, policy_for

__all__ = ["DlqDecision", "Outcome", "decide"]


class Outcome(enum.StrEnum):
    RETRIED = "retried"
    DISCARDED = "discarded"
    MANUAL_REVIEW = "manual_review"
    REDRIVEN = "redriven"


@dataclass(frozen=True, slots=True)
class DlqDecision:
    outcome: Outcome
    note: str
    delay: float = 0.0


def decide(letter: DeadLetter, *, max_dlq_retries: int = 3, policy: PolicyLookup = policy_for) -> DlqDecision:
    """The outcome of one DLQ record (alerting is decided separately, per topic and hour)."""
    if letter.error_class is ErrorClass.VALIDATION:
        return DlqDecision(Outcome.DISCARDED, f"corrupt or invalid record: {letter.reason}")
    if letter.is_reference:
        return DlqDecision(Outcome.MANUAL_REVIEW, f"{letter.error_class.value}, a {letter.value_size}-byte "
                                                  f"record dead-lettered as a reference: {letter.reason}")
    if letter.error_class.retryable:
        if letter.dlq_retries < max_dlq_retries:
            delay = policy(letter.event_type).delay(letter.dlq_retries + 1)
            return DlqDecision(Outcome.RETRIED, f"DLQ retry {letter.dlq_retries + 1}/{max_dlq_retries}",
                               delay)
        return DlqDecision(Outcome.MANUAL_REVIEW,
                           f"all {max_dlq_retries} DLQ retries exhausted: {letter.reason}")
    return DlqDecision(Outcome.MANUAL_REVIEW, f"{letter.error_class.value}: {letter.reason}")
