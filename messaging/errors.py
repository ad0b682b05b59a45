"""The runtime's one exception hierarchy and the classifier that maps any exception onto it.

Handlers raise these (or anything else: `classify` decides explicitly what an unknown exception
means). The class decides the route: retryable ones are retried in place under the event type's
retry profile and dead-lettered when it is exhausted; permanent ones go to the DLQ at once::

    MessagingError
     ├── ProcessingError                 a message could not be handled; .error_class
     │    ├── RetryableError             → retry with backoff, then DLQ
     │    │    ├── TransientError            timeout, connection refused, broker/database away
     │    │    └── ResourceBusyError         rate limited, locked
     │    │         └── LeaseHeldError         another consumer holds the idempotency lease: waited
     │    │                                    out (never counts as a retry, never dead-lettered)
     │    └── PermanentError             → DLQ at once
     │         ├── ValidationError           invalid payload, missing field (every schemas.ContractError)
     │         ├── NotFoundError             the entity the event refers to does not exist
     │         ├── PermissionDeniedError     unauthorized; bad signature in production mode
     │         └── InconsistencyError        version conflict, state that contradicts the event
     └── PublishError                    the broker did not acknowledge a record (.retriable)
          └── BrokerUnavailableError     all brokers down / delivery timed out (→ file fallback)
"""

from __future__ import annotations

import enum
from typing import ClassVar

import schemas

__all__ = [
    "BrokerUnavailableError",
    "ErrorClass",
    "InconsistencyError",
    "LeaseHeldError",
    "MessagingError",
    "NotFoundError",
    "PermanentError",
    "PermissionDeniedError",
    "ProcessingError",
    "PublishError",
    "ResourceBusyError",
    "RetryableError",
    "TransientError",
    "ValidationError",
    "classify",
]


class ErrorClass(enum.StrEnum):
    """What went wrong, as far as routing cares; recorded on every DLQ record."""

    TRANSIENT = "transient"
    RESOURCE_BUSY = "resource_busy"
    VALIDATION = "validation"
    NOT_FOUND = "not_found"
    PERMISSION = "permission"
    INCONSISTENCY = "inconsistency"

    @property
    def retryable(self) -> bool:
        return self in (ErrorClass.TRANSIENT, ErrorClass.RESOURCE_BUSY)


class MessagingError(Exception):
    """Root of every error the messaging runtime raises or understands."""


class ProcessingError(MessagingError):
    """A message could not be handled; subclasses say whether trying again can help."""

    error_class: ClassVar[ErrorClass]


class RetryableError(ProcessingError):
    """Trying the same message again later may succeed."""


class PermanentError(ProcessingError):
    """Trying again cannot help: the message goes to the DLQ at once."""


class TransientError(RetryableError):
    error_class = ErrorClass.TRANSIENT


class ResourceBusyError(RetryableError):
    error_class = ErrorClass.RESOURCE_BUSY


class LeaseHeldError(ResourceBusyError):
    """Another consumer holds this record's idempotency lease: it is handling the record now, or it
    died and its lease runs out within seconds. Either way this is not a failure of the record, so
    the consumer waits (polling) instead of spending the retry profile: a replacement for a crashed
    consumer must not dead-letter what the dead one was working on."""


class ValidationError(PermanentError):
    error_class = ErrorClass.VALIDATION


class NotFoundError(PermanentError):
    error_class = ErrorClass.NOT_FOUND


class PermissionDeniedError(PermanentError):
    error_class = ErrorClass.PERMISSION


class InconsistencyError(PermanentError):
    error_class = ErrorClass.INCONSISTENCY


class PublishError(MessagingError):
    """The broker did not acknowledge a record (timeout, broker down, topic missing)."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


class BrokerUnavailableError(PublishError):
    """No broker answered in time: the record belongs in the file fallback, not in an error log."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retriable=True)


def _busy_database_errors() -> tuple[type[BaseException], ...]:
    from psycopg import errors as pg

    return (pg.LockNotAvailable, pg.DeadlockDetected, pg.SerializationFailure, pg.TooManyConnections)


def _transient_database_errors() -> tuple[type[BaseException], ...]:
    import psycopg
    from sqlalchemy import exc as sa

    return (psycopg.OperationalError, psycopg.InterfaceError, sa.OperationalError, sa.InterfaceError,
            sa.TimeoutError, sa.DisconnectionError)


def classify(exc: BaseException) -> ErrorClass:
    """The error class of any exception, decided by an explicit, ordered table.

    Our own hierarchy says it directly; contract errors are validation (a bad signature is a
    permission problem); locks and rate limits are busy; timeouts and lost connections transient;
    `ValueError` validation, `LookupError` not-found, `PermissionError` permission. Anything else
    is unknown: it is treated as TRANSIENT, so it is retried under the profile and then lands in
    the DLQ with its exception type named, rather than being lost or retried forever.
    """
    from sqlalchemy import exc as sa

    if isinstance(exc, ProcessingError):
        return exc.error_class
    if isinstance(exc, schemas.SignatureError):
        return ErrorClass.PERMISSION
    if isinstance(exc, schemas.ContractError):
        return ErrorClass.VALIDATION
    original = exc.orig if isinstance(exc, sa.DBAPIError) and exc.orig is not None else exc
    if isinstance(original, _busy_database_errors()):
        return ErrorClass.RESOURCE_BUSY
    if isinstance(exc, sa.IntegrityError):
        return ErrorClass.INCONSISTENCY
    if isinstance(exc, (TimeoutError, ConnectionError, *_transient_database_errors())):
        return ErrorClass.TRANSIENT
    if isinstance(exc, PublishError):
        return ErrorClass.TRANSIENT if exc.retriable else ErrorClass.VALIDATION
    if isinstance(exc, PermissionError):
        return ErrorClass.PERMISSION
    if isinstance(exc, LookupError):
        return ErrorClass.NOT_FOUND
    if isinstance(exc, ValueError):
        return ErrorClass.VALIDATION
    return ErrorClass.TRANSIENT
