"""The consumer beside FastStream, the peer a user would pick, on the same records in the same run.

Every side reads the same N signed `order.created` records (a topic of the bench's own) with a fresh
group, commits after handling, and does the contract's whole check on every record: signature and
signed time (`Keyring.verify`), decode with upcasting and full pydantic validation (`schemas.decode`),
signer policy (`schemas.signer_violation`) and the age window (`stale_reason`):

- floor: raw confluent-kafka, `consume(500)` + that check + a commit per batch; no runtime at all;
- ours: `EventConsumer` without a database (the same check, plus its span, handler table, failure
  routing and commit after the batch);
- FastStream batch: `@broker.subscriber(..., batch=True, max_records=500, ack_policy=AckPolicy.ACK)`
  whose handler runs that check over the batch's records; its decoder hands over the raw bodies and
  its logger is off, so FastStream pays for no JSON parse or log line of its own;
- FastStream per message (`--per-message`): its default subscriber, the same check per record.

Rounds alternate the order of the sides, so a noisy moment or a warm cache favours none. Figures are
records/s from the first record handled to the last; the ratios are ours / FastStream batch (goal
>= 1.5) and ours / floor (goal >= 0.9), medians with their range over the rounds.

Run: `.venv/bin/python bench/bench_peer.py [--events 30000] [--rounds 4] [--per-message]` (stack up
first; FastStream comes with the `bench` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import schemas  # noqa: E402
from bench.bench_messaging import _delete_topics, _rate, bench_pipeline_consumer, topic_with_records  # noqa: E402
from core.settings import Settings, get_settings  # noqa: E402
from core.tracing import configure_tracing  # noqa: E402
from messaging.consumer.freshness import DEFAULT_MAX_EVENT_AGE_S, stale_reason  # noqa: E402
from messaging.consumer.gctune import tune_gc_for_throughput  # noqa: E402
from messaging.wiring import keyring_from  # noqa: E402

BATCH = 500


def contract_check(keyring: schemas.Keyring, value: bytes, headers: list) -> schemas.Envelope:
    """The whole check of one record, by hand: what every side does to every record."""
    check = keyring.verify(value, headers)
    if not check.ok:
        raise schemas.SignatureError(f"signature: {check.status} {check.detail}", check=check)
    envelope = schemas.decode(value)
    violation = schemas.signer_violation(envelope, check)
    if violation is not None:
        raise schemas.SignatureError(violation)
    stale = stale_reason(envelope, check, DEFAULT_MAX_EVENT_AGE_S)
    if stale is not None:
        raise ValueError(stale)
    return envelope


def floor(settings: Settings, topic: str, n: int) -> float:
    """Raw confluent-kafka with the contract check and nothing else."""
    from confluent_kafka import Consumer, TopicPartition

    keyring = keyring_from(settings)
    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "auto.offset.reset": "earliest",
                         "group.id": f"bench-floor-{uuid.uuid4()}", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen, started = 0, None
    while seen < n:
        batch = consumer.consume(BATCH, 1.0)
        if batch and started is None:
            started = time.perf_counter()
        last = {}
        for msg in batch:
            if msg.error() is None:
                contract_check(keyring, msg.value(), msg.headers())
                seen += 1
                last[msg.partition()] = msg
        if last:
            offsets = [TopicPartition(m.topic(), m.partition(), m.offset() + 1) for m in last.values()]
            consumer.commit(offsets=offsets, asynchronous=False)
    rate = _rate(seen, time.perf_counter() - started)
    consumer.close()
    return rate


def ours(settings: Settings, topic: str, n: int) -> float:
    return bench_pipeline_consumer(settings, topic, n, None)


def faststream(settings: Settings, topic: str, n: int, *, batch: bool) -> float:
    return asyncio.run(_faststream(settings, topic, n, batch=batch))


async def _faststream(settings: Settings, topic: str, n: int, *, batch: bool) -> float:
    from faststream import AckPolicy
    from faststream.confluent import KafkaBroker
    from faststream.confluent.annotations import KafkaMessage

    keyring = keyring_from(settings)
    broker = KafkaBroker(settings.bootstrap_servers, logger=None)
    done = asyncio.Event()
    seen = [0]
    started: list[float] = []

    async def raw_bodies(message):  # noqa: ANN001, ANN202 - FastStream's decoder hook: no JSON parse
        return message.body

    options = {"max_records": BATCH} if batch else {}
    subscriber = broker.subscriber(topic, group_id=f"bench-faststream-{uuid.uuid4()}",
                                   auto_offset_reset="earliest", batch=batch, ack_policy=AckPolicy.ACK,
                                   decoder=raw_bodies, **options)

    @subscriber
    async def handle(body: object, message: KafkaMessage) -> None:
        if not started:
            started.append(time.perf_counter())
        records = message.raw_message if batch else (message.raw_message,)
        for record in records:
            contract_check(keyring, record.value(), record.headers())
        seen[0] += len(records)
        if seen[0] >= n:
            done.set()

    await broker.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=600)
        return _rate(seen[0], time.perf_counter() - started[0])
    finally:
        await broker.stop()


def _ratio_line(name: str, tops: list[float], bottoms: list[float], goal: str) -> str:
    ratios = [top / bottom for top, bottom in zip(tops, bottoms, strict=True)]
    return (f"  {name}: {statistics.median(ratios):.2f} (rounds {min(ratios):.2f}-{max(ratios):.2f}; "
            f"goal {goal})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_peer", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000,
                        help="records per side and round (default 30000)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds, alternating the order (default 4)")
    parser.add_argument("--per-message", action="store_true",
                        help="also FastStream's default per-message subscriber (slow: about 2k records/s)")
    args = parser.parse_args(argv)
    if args.events < BATCH or args.rounds < 1:
        parser.error(f"--events must be at least {BATCH} and --rounds at least 1")
    logging.getLogger("faststream").setLevel(logging.WARNING)
    configure_tracing("bench")
    tune_gc_for_throughput()  # what EventConsumer.run does in a worker process
    settings = get_settings()
    topic = topic_with_records(settings, args.events)
    gc.freeze()
    sides: dict[str, Callable[[], float]] = {
        "floor": lambda: floor(settings, topic, args.events),
        "ours": lambda: ours(settings, topic, args.events),
        "faststream batch": lambda: faststream(settings, topic, args.events, batch=True),
    }
    if args.per_message:
        sides["faststream per message"] = lambda: faststream(settings, topic, args.events, batch=False)
    print(f"consumer peers, {args.events} records of order.created per side, {settings.kafka_partitions} "
          f"partitions, {args.rounds} rounds alternating the order", flush=True)
    rates: dict[str, list[float]] = {name: [] for name in sides}
    try:
        for round_no in range(args.rounds):
            order = list(sides) if round_no % 2 == 0 else list(reversed(sides))
            figures = []
            for name in order:
                rates[name].append(sides[name]())
                figures.append(f"{name} {rates[name][-1]:,.0f}/s")
            print(f"round {round_no + 1}: " + ", ".join(figures), flush=True)
    finally:
        _delete_topics(settings, [topic])
    print("medians: " + ", ".join(f"{name} {statistics.median(r):,.0f}/s" for name, r in rates.items()))
    print(_ratio_line("ours / FastStream batch", rates["ours"], rates["faststream batch"], ">= 1.5"))
    print(_ratio_line("ours / floor", rates["ours"], rates["floor"], ">= 0.9"))
    print(_ratio_line("FastStream batch / floor", rates["faststream batch"], rates["floor"], "-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
