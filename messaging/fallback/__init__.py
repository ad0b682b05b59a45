"""The file fallback: records that could not reach Kafka wait in a local spool and are replayed in
order once the broker is back.

- `spool`: `<dir>/YYYY-MM-DD.jsonl`, fsynced, with a cursor and a lock (`FallbackSpool`);
- `replay`: its in-order replayer (`SpoolReplayer`); lines it cannot replay go to `.failed`.
"""

from messaging.fallback.replay import ReplayReport, SpoolReplayer
from messaging.fallback.spool import FallbackSpool, SpoolBatch, SpooledRecord, SpoolStatus

__all__ = ["FallbackSpool", "ReplayReport", "SpoolBatch", "SpoolReplayer", "SpoolStatus", "SpooledRecord"]
