"""One fetched record on its way through a batch: what reading found out about it, which handlers
serve it and which idempotency keys they claim."""

from __future__ import annotations

from confluent_kafka import Message

import schemas
from messaging.handlers import HandlerSpec
from messaging.idempotency import KeyRequest

__all__ = ["TP", "InFlight", "position_of"]

TP = tuple[str, int]
"""A partition as (topic, partition)."""

_NO_SPECS: list[HandlerSpec] = []
_NO_REQUESTS: list[KeyRequest] = []


class InFlight:
    """A plain slotted class, not a dataclass: the consumer makes one per record, so it stays cheap.

    `error` set: the record cannot be handled (it goes to failure routing); no `specs`: nobody here
    serves it (no handler for its type, or `accept` refused it) and it is acknowledged as is."""

    __slots__ = ("check", "envelope", "error", "headers", "msg", "offset", "partition", "requests", "specs",
                 "topic", "trace_parent")

    def __init__(self, msg: Message, headers: list[tuple[str, bytes]]) -> None:
        self.msg = msg
        self.headers = headers
        self.topic: str = msg.topic()
        self.partition: int = msg.partition()
        self.offset: int = msg.offset()
        self.envelope: schemas.Envelope | None = None
        self.check: schemas.SignatureCheck | None = None
        self.error: Exception | None = None
        self.trace_parent: bytes | None = None  # the raw `traceparent` header value
        self.specs: list[HandlerSpec] = _NO_SPECS
        self.requests: list[KeyRequest] = _NO_REQUESTS

    @property
    def tp(self) -> TP:
        return (self.topic, self.partition)

    @property
    def served(self) -> bool:
        """Whether this consumer owes the record a handler call or a failure route (`finish_record`
        reads the same two fields in place)."""
        return self.error is not None or bool(self.specs)


def position_of(msg: Message) -> str:
    """`topic[partition]@offset`, as the logs name a record."""
    return f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
