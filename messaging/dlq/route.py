"""How a record that cannot be handled leaves its partition: whole to its DLQ topic, as a reference
when the whole would not fit a DLQ record, or — when dead-lettering keeps failing — parked.

The consumer decides *when* (retries, the park window); this decides *how*. A reference's value is
stored in PostgreSQL before the reference is published, and a parked record is stored before its
offset is committed, so each way off the partition keeps the record whole.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from messaging.dlq.letter import MAX_DLQ_RECORD_BYTES, REFERENCE_HEAD_BYTES, DeadLetter
from messaging.dlq.parking import ParkingLot
from messaging.dlq.store import DlqStore
from messaging.errors import PublishError
from messaging.producer import Delivery, EventProducer

__all__ = ["DeadLetterRoute"]

log = logging.getLogger(__name__)


class DeadLetterRoute:
    """Dead-letters through `producer`; keeps references' values and parked records in `engine`'s
    database, connecting only when one is needed. Without an engine there is nowhere to keep them:
    a reference or a park then fails, and the consumer keeps the record in place."""

    def __init__(self, producer: EventProducer, engine: Engine | None = None, *,
                 max_record_bytes: int = MAX_DLQ_RECORD_BYTES,
                 head_bytes: int = REFERENCE_HEAD_BYTES) -> None:
        self.producer = producer
        self.max_record_bytes = max_record_bytes
        self.head_bytes = head_bytes
        self._engine = engine
        self._store: DlqStore | None = None
        self._lot: ParkingLot | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("no database for DLQ references and parked records: this DeadLetterRoute "
                               "was built without an engine (see messaging.wiring.consumer_from)")
        return self._engine

    @property
    def store(self) -> DlqStore:
        if self._store is None:
            self._store = DlqStore(self.engine)
        return self._store

    @property
    def lot(self) -> ParkingLot:
        if self._lot is None:
            self._lot = ParkingLot(self.engine)
        return self._lot

    def dead_letter(self, letter: DeadLetter) -> tuple[Delivery, DeadLetter]:
        """Publish `letter` (or a reference to it); returns the delivery and what was sent.

        Raises `PublishError` when the DLQ took neither, or a database error when a reference's
        value could not be stored (then no reference was published)."""
        if letter.record_size() > self.max_record_bytes:
            reference = letter.as_reference(self.head_bytes)
            if reference.record_size() > self.max_record_bytes:  # its headers alone are too big
                raise PublishError(f"even a reference to it is {reference.record_size()} bytes, over the "
                                   f"DLQ limit of {self.max_record_bytes}: its headers are too big",
                                   retriable=False)
            return self._reference(letter), reference
        try:
            return self._publish(letter), letter
        except PublishError as refused:
            if refused.retriable or len(letter.value) <= self.head_bytes:
                raise  # a broker away, or a reference would be no smaller
            log.warning("the DLQ refused the dead letter of %s/%d/%d whole (%s); sending a reference",
                        letter.original_topic, letter.original_partition, letter.original_offset, refused)
            return self._reference(letter), letter.as_reference(self.head_bytes)

    def park(self, letter: DeadLetter, *, dlq_error: str) -> int:
        """Keep the whole record in `messaging.parked`; returns its row id (raises when the database
        cannot take it: then the record must stay where it is)."""
        return self.lot.park(letter, dlq_error=dlq_error)

    def _reference(self, letter: DeadLetter) -> Delivery:
        self.store.keep_value(letter.value)  # first: a reference never points at nothing
        return self._publish(letter.as_reference(self.head_bytes))

    def _publish(self, letter: DeadLetter) -> Delivery:
        return self.producer.publish_raw(letter.topic, key=letter.key, value=letter.value,
                                         headers=letter.record_headers())
