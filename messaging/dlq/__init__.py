"""The dead-letter queue: where a record that cannot be handled goes, and what becomes of it.

- `letter`: the DLQ record format (`DeadLetter`: the original record plus `x-cf-dlq-*` headers; a
  reference for a record too big for a DLQ record);
- `route`: how a record leaves its partition — whole, as a reference, or parked (`DeadLetterRoute`);
- `outcomes`: the four outcomes of a DLQ record (retry / discard / manual review; alerts per topic);
- `processor`: the consumer group over the DLQ topics applying them (`DlqProcessor`);
- `store`: audit rows, incidents, alerts and references' values in PostgreSQL (`DlqStore`);
- `parking`: records parked when dead-lettering kept failing, their redrive and discard;
- `admin`: what the `cloud-factory dlq` commands do (list, show, redrive, discard).

The record-level and storage names are re-exported here; `processor` and `admin`, the two Kafka
clients, are imported from their modules.
"""

from messaging.dlq.letter import DLQ_RETRIES, MAX_DLQ_RECORD_BYTES, REFERENCE_HEAD_BYTES, DeadLetter
from messaging.dlq.outcomes import DlqDecision, Outcome, decide
from messaging.dlq.parking import ParkedRecord, ParkingLot, discard_parked, redrive_parked
from messaging.dlq.route import DeadLetterRoute
from messaging.dlq.store import DlqPosition, DlqStore

__all__ = [
    "DLQ_RETRIES",
    "MAX_DLQ_RECORD_BYTES",
    "REFERENCE_HEAD_BYTES",
    "DeadLetter",
    "DeadLetterRoute",
    "DlqDecision",
    "DlqPosition",
    "DlqStore",
    "Outcome",
    "ParkedRecord",
    "ParkingLot",
    "decide",
    "discard_parked",
    "redrive_parked",
]
