"""The transactional outbox: a service writes its events into its own `outbox` table in the
transaction of the rows they announce; a relay publishes them to Kafka afterwards, in order.

- `records`: the table's shape (`outbox_table`), a signed record ready to publish with its writer's
  trace context, `enqueue`;
- `relay`: `OutboxRelay`, publishing pending rows in insertion order under an advisory lock, marking
  them published once the broker acknowledged them;
- `retention`: purging published rows past their retention;
- `delivery`: a CLI command's attempt to get its own events onto Kafka right away.

Which services keep an outbox, and their emitters, live with the services (`services.common`).
"""

from messaging.outbox.records import (
    OutboxRecord,
    decode_headers,
    encode_headers,
    enqueue,
    outbox_table,
    record_for,
    writer_span,
)
from messaging.outbox.relay import OutboxRelay, RelayResult
from messaging.outbox.retention import purge_published

__all__ = [
    "OutboxRecord",
    "OutboxRelay",
    "RelayResult",
    "decode_headers",
    "encode_headers",
    "enqueue",
    "outbox_table",
    "purge_published",
    "record_for",
    "writer_span",
]
