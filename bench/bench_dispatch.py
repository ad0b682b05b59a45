"""The consumer's own cost per record, without a broker: its batch path against the contract floor.

Both sides take the same N signed `order.created` records (each with a `traceparent`, as
`EventProducer` writes them) from memory, in batches of 500:

- floor: the contract's whole check per record (`bench_peer.contract_check`: signature and signed
  time, decode with full validation, signer policy, age window) and nothing else;
- ours: `EventConsumer`'s batch path without a database (`_process_batch`: reading, handler table,
  consume span, log ids, handler context, retry bookkeeping, failure routing), its commit left out.

With no broker in the way, the difference is the runtime's per-record cost alone, steady enough to
see a change of a few hundred nanoseconds (the broker bench, `bench_peer.py`, varies more than that
between rounds). Figures are microseconds of CPU per record (thread time, so another process's noise
counts less), the median and the best of the rounds, which alternate the order of the sides.

Run: `.venv/bin/python bench/bench_dispatch.py [--events 20000] [--rounds 9]` (needs the signing keys
that `cloud-factory stack up` writes; no running stack).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import schemas  # noqa: E402
from bench.bench_messaging import _events  # noqa: E402
from bench.bench_peer import contract_check  # noqa: E402
from core.settings import get_settings  # noqa: E402
from core.tracing import child_traceparent, configure_tracing  # noqa: E402
from messaging.consumer.gctune import tune_gc_for_throughput  # noqa: E402
from messaging.consumer.runtime import EventConsumer  # noqa: E402
from messaging.producer import record_headers  # noqa: E402
from messaging.testing import MemoryRecord  # noqa: E402
from messaging.wiring import keyring_from  # noqa: E402

BATCH = 500


class _NoProducer:
    """The DLQ producer of a run in which no record fails (a failure would be a bench error)."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"a record was dead-lettered ({name}): the bench's records must all pass")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    configure_tracing("bench-dispatch")
    settings = get_settings()
    signer = keyring_from(settings, "order")
    messages = []
    for offset, envelope in enumerate(_events(args.events)):
        value = schemas.encode(envelope)
        headers = record_headers(envelope, value, signer, trace_headers=child_traceparent())
        messages.append(MemoryRecord("bench", offset, str(envelope.correlation_id).encode(), value,
                                     tuple(headers)))
    keyring = keyring_from(settings)
    handled = [0]

    def handler(envelope: schemas.Envelope, context: object) -> None:
        handled[0] += 1

    consumer = EventConsumer("127.0.0.1:1", group_id="bench-dispatch", topics=["bench"],
                             handlers={"order.created": handler}, keyring=keyring,
                             signing_mode=settings.signing_mode, dlq_producer=_NoProducer(),  # type: ignore[arg-type]
                             extra_config={"log_level": 0, "error_cb": lambda error: None})  # no broker
    consumer._commit = lambda done: None  # type: ignore[method-assign] - no broker to commit to
    tune_gc_for_throughput()

    def ours() -> None:
        for start in range(0, len(messages), BATCH):
            consumer._process_batch(messages[start:start + BATCH])  # type: ignore[arg-type]

    def floor() -> None:
        for start in range(0, len(messages), BATCH):
            for message in messages[start:start + BATCH]:
                contract_check(keyring, message.value(), message.headers())

    sides = {"floor": floor, "ours": ours}
    per_record: dict[str, list[float]] = {name: [] for name in sides}
    print(f"consumer batch path in memory, {args.events} records of order.created, {args.rounds} rounds")
    for round_no in range(args.rounds):
        order = list(sides) if round_no % 2 == 0 else list(reversed(sides))
        for name in order:
            started = time.thread_time()
            sides[name]()
            per_record[name].append((time.thread_time() - started) / args.events * 1e6)
    if handled[0] != args.rounds * args.events:
        raise SystemExit(f"handled {handled[0]} of {args.rounds * args.events} records: the bench is wrong")
    for name, figures in per_record.items():
        print(f"  {name:5}: {statistics.median(figures):6.2f} us/record (best {min(figures):.2f})")
    floor_us, ours_us = statistics.median(per_record["floor"]), statistics.median(per_record["ours"])
    print(f"  runtime's own cost: {ours_us - floor_us:.2f} us/record "
          f"(best rounds {min(per_record['ours']) - min(per_record['floor']):.2f})")
    print(f"  ours / floor throughput: {floor_us / ours_us:.2f} "
          f"(best rounds {min(per_record['floor']) / min(per_record['ours']):.2f})")
    consumer._consumer.close()


if __name__ == "__main__":
    main()
