"""The contract's exception types.

Every failure to read or trust a record is a `ContractError`: it is a `ValueError` (bad input, not a bug),
it never retries into success, and it names the offending wire field so a DLQ entry is actionable.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ContractError",
    "SignatureError",
    "UnauthorizedSignerError",
    "UnknownEventTypeError",
    "UnsupportedVersionError",
]


class ContractError(ValueError):
    """A record (or a value meant to become one) violates the event contract.

    `field` is the dotted wire path of the offending field (``"data.total.currency"``) or None when the
    problem is the record as a whole (malformed JSON, not an object). `reason` is a short human sentence
    that never contains key material and at most a short excerpt of the input.
    """

    category: ClassVar[str] = "validation"
    retryable: ClassVar[bool] = False

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments need help to survive pickling (multiprocessing, Temporal payloads).
        return (_rebuild, (type(self), self.reason, self.field))


def _rebuild(cls: type[ContractError], reason: str, field: str | None) -> ContractError:
    return cls(reason, field=field)


class UnknownEventTypeError(ContractError):
    """`eventType` is not in the catalog (a newer producer, or a typo)."""


class UnsupportedVersionError(ContractError):
    """The payload version is not known to this build (typically a future version)."""


class SignatureError(ContractError):
    """The record's HMAC signature is missing or does not verify, and policy says reject.

    `check` is the `SignatureCheck` that failed (None when raised while signing).
    """

    def __init__(self, reason: str, *, field: str | None = None, check: object | None = None) -> None:
        super().__init__(reason, field=field)
        self.check = check


class UnauthorizedSignerError(SignatureError):
    """The signature verifies, but its signer may not say this: the event type's catalog publisher is
    another service, or the envelope's `producer` names someone else. A permission problem, not a
    malformed record: it goes to the DLQ for a person (production) or is logged (development)."""
