"""Scaling with processes: `cloud-factory worker notification --processes N` for N = 1 and 2.

    .venv/bin/python bench/bench_processes.py [--events 10000] [--rounds 2] [--processes 1 2]

On a private stack of its own (Kafka, Temporal, PostgreSQL under `.cloud-factory-bench/`, free ports,
removed at the end) whose topics have 6 partitions. Each run starts the worker as deployed — one
supervisor, N `worker notification` processes in one consumer group — waits until every process is
a member with partitions of its own, then puts `--events` signed `order.created` events (ready
records from a raw producer, as `bench_messaging`'s baseline sends them; 600 flows over the 6
partitions) on the topic and samples the events handled and the CPU of the worker processes,
PostgreSQL and Kafka every 0.1 s until all are handled and committed. Each event is handled in
full: verified, decoded, its two messages and reports written with its idempotency key in one
transaction, the reports relayed to Kafka.

Throughput is read between 10 % and 90 % handled (counted by the events' message rows, written
event by event — committed offsets move a batch at a time; the producer's burst and the tail left
out), the CPU over the same window. Printed per N and round: events/s, CPU ms per event of the worker
processes, PostgreSQL and Kafka, and events per CPU-second of the workers — the projection per core:
what each core given to the workers would add while the database and broker keep up. Rounds
alternate the order of N; the summary gives medians and the ratio of the two process counts.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench_messaging import _raw_produce  # noqa: E402  (bench/ is on sys.path): the same ready records
from confluent_kafka import Consumer, TopicPartition
from cpu_split import CpuMeter, stack_pids
from soak_stack import soak_stack
from sqlalchemy import func, select

import schemas
from cloud_factory.stack._process import children_of
from core.db import engine_for
from core.settings import Settings
from core.tracing import child_traceparent
from messaging.groups import assignment
from messaging.producer import record_headers
from messaging.wiring import ensure_catalog_topics, keyring_from
from schemas.examples import example_data
from services.notification.tables import notifications
from workers.heartbeat import read_heartbeats

CLI = str(Path(sys.executable).parent / "cloud-factory")
PARTITIONS = 6
EVENT_TYPE = "order.created"
GROUP_SUFFIX = f"-bench-{uuid.uuid4().hex[:8]}"
GROUP = f"notification{GROUP_SUFFIX}"
WINDOW = (0.10, 0.90)
TENANT = "bench-acme"
CHANNELS = 2  # Notification writes an email and an in-app message per event


class Handled:
    """Events handled so far: their message rows, each written in the event's own transaction, so
    the count grows event by event (committed offsets move a whole batch at a time)."""

    def __init__(self, settings: Settings) -> None:
        self._engine = engine_for(settings.dsn)
        self._query = (select(func.count()).select_from(notifications)
                       .where(notifications.c.tenant_id == TENANT))

    def __call__(self) -> int:
        with self._engine.connect() as conn:
            return conn.execute(self._query).scalar_one() // CHANNELS


@dataclass(frozen=True)
class Run:
    processes: int
    rate: float  # events/s committed inside the window
    worker_ms: float  # CPU ms per event, worker processes (supervisor and children)
    postgres_ms: float
    kafka_ms: float

    @property
    def per_core(self) -> float:
        """Events per CPU-second of the worker processes."""
        return 1000 / self.worker_ms if self.worker_ms else float("inf")


def _records(settings: Settings, count: int) -> list[tuple[bytes, bytes, list]]:
    """`count` signed order.created records (key, value, headers), as Order's producer signs them."""
    keyring = keyring_from(settings, "order")
    data = example_data(EVENT_TYPE, schemas.catalog[EVENT_TYPE].latest_version)
    actor = schemas.Actor(id="bench", type=schemas.ActorType.SYSTEM)
    flows = [uuid.uuid4() for _ in range(600)]
    records = []
    for index in range(count):
        envelope = schemas.new_event(EVENT_TYPE, data, tenant_id=TENANT,
                                     correlation_id=flows[index % 600], actor=actor, producer="order-service")
        value = schemas.encode(envelope)
        key = str(envelope.correlation_id).encode()
        headers = record_headers(envelope, value, keyring, key=key, trace_headers=child_traceparent())
        records.append((key, value, headers))
    return records


class Offsets:
    """The group's committed offsets and the topic's ends, summed over its partitions."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._probe = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": GROUP,
                                "enable.auto.commit": False})
        self._partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    def committed(self) -> int:
        return sum(max(tp.offset, 0) for tp in self._probe.committed(self._partitions, timeout=10))

    def end(self) -> int:
        return sum(self._probe.get_watermark_offsets(tp, timeout=10)[1] for tp in self._partitions)

    def close(self) -> None:
        self._probe.close()


def _members_with_partitions(settings: Settings) -> int:
    return sum(1 for member in assignment(settings.bootstrap_servers, GROUP) if member)


def _start(settings: Settings, processes: int, log: Path) -> subprocess.Popen:
    """The worker (with N > 1 its supervisor), once its N processes beat and each holds partitions."""
    env = {**os.environ, "CF_WORKER_GROUP_SUFFIX": GROUP_SUFFIX}
    with log.open("ab") as sink:
        supervisor = subprocess.Popen([CLI, "worker", "notification", "--processes", str(processes)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=sink)
    deadline = time.monotonic() + 120
    while True:
        # `--processes 1` is the worker itself, no supervisor
        ours = children_of(supervisor.pid) | {supervisor.pid}
        beating = {beat.pid for beat in read_heartbeats(settings.state_dir)} & ours
        if len(beating) == processes and _members_with_partitions(settings) == processes:
            return supervisor
        if supervisor.poll() is not None or time.monotonic() > deadline:
            _stop(supervisor)
            raise SystemExit(f"error: `worker notification --processes {processes}` did not get ready; "
                             f"see {log}")
        time.sleep(0.3)


def _stop(supervisor: subprocess.Popen) -> None:
    if supervisor.poll() is None:
        supervisor.send_signal(signal.SIGTERM)
    try:
        supervisor.wait(90)
    except subprocess.TimeoutExpired:
        supervisor.kill()
        supervisor.wait(10)


def run_once(settings: Settings, topic: str, processes: int, events: int, log: Path) -> Run:
    offsets = Offsets(settings, topic)
    handled = Handled(settings)
    supervisor = _start(settings, processes, log)
    try:
        start, end = handled(), offsets.end()
        records = _records(settings, events)
        meter = CpuMeter({"workers": supervisor.pid, **stack_pids(settings)})
        _raw_produce(settings, [(topic, key, value, headers) for key, value, headers in records])
        low, high = start + int(events * WINDOW[0]), start + int(events * WINDOW[1])
        t_low = t_high = None
        cpu: dict[str, float] = {}
        deadline = time.monotonic() + 600
        while t_high is None:
            done = handled()
            now = time.perf_counter()
            if t_low is None and done >= low:
                t_low, at_low = now, done
                meter.start()
            if t_low is not None and done >= high:
                t_high, at_high = now, done
                cpu = meter.stop()
            print(f"\r  {processes} process(es): {max(0, done - start):>7}/{events} handled", end="",
                  flush=True)
            if time.monotonic() > deadline:
                raise SystemExit(f"\nerror: not all committed within 600 s; see {log}")
            time.sleep(0.1)
        while offsets.committed() < end + events:  # and committed, so the next run starts on an empty lag
            time.sleep(0.2)
        print("\r", end="")
    finally:
        _stop(supervisor)
        offsets.close()
    count = at_high - at_low
    per_event = {name: 1000 * seconds / count for name, seconds in cpu.items()}
    kafka = sum(ms for name, ms in per_event.items() if name.startswith("kafka"))
    return Run(processes, count / (t_high - t_low), per_event.get("workers", 0.0),
               per_event.get("postgres", 0.0), kafka)


def _line(run: Run) -> str:
    return (f"  {run.processes} process(es): {run.rate:8.0f} events/s   CPU ms per event: workers "
            f"{run.worker_ms:5.2f}, postgres {run.postgres_ms:5.2f}, kafka {run.kafka_ms:5.2f}   "
            f"per core: {run.per_core:6.0f} events per worker CPU-second")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="events per run (default 10000)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; each runs every process count")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2],
                        help="process counts (default 1 2)")
    args = parser.parse_args()
    if args.events < 100 or args.rounds < 1 or min(args.processes) < 1:
        parser.error("--events must be at least 100, --rounds and --processes at least 1")
    os.environ["CF_KAFKA_PARTITIONS"] = str(PARTITIONS)
    runs: list[Run] = []
    with soak_stack(private=True) as settings:
        ensure_catalog_topics(settings)
        topic = schemas.topic_for(EVENT_TYPE, env=settings.env)
        log = settings.state_dir / "bench-processes.log"
        print(f"{args.events} {EVENT_TYPE} events per run into {PARTITIONS} partitions; worker notification "
              f"--processes {' / '.join(map(str, args.processes))}; {os.cpu_count()} cores shared with "
              f"PostgreSQL and Kafka")
        for round_index in range(args.rounds):
            order = args.processes if round_index % 2 == 0 else list(reversed(args.processes))
            print(f"round {round_index + 1}")
            for processes in order:
                run = run_once(settings, topic, processes, args.events, log)
                runs.append(run)
                print(_line(run))
    print("medians:")
    medians = {}
    for processes in args.processes:
        mine = [run for run in runs if run.processes == processes]
        medians[processes] = Run(processes, *(statistics.median(getattr(r, f) for r in mine)
                                              for f in ("rate", "worker_ms", "postgres_ms", "kafka_ms")))
        print(_line(medians[processes]))
    base = medians[args.processes[0]]
    for processes in args.processes[1:]:
        print(f"  {processes} processes / {base.processes}: {medians[processes].rate / base.rate:.2f}× the "
              f"events/s (range {min(r.rate for r in runs if r.processes == processes) / base.rate:.2f}–"
              f"{max(r.rate for r in runs if r.processes == processes) / base.rate:.2f}×)")


if __name__ == "__main__":
    main()
