"""One trace per flow, outboxes included, on the real stack: an outbox row keeps the trace context of
the span that wrote it — an Identity, Product or Support command's own span (a child of the caller's,
or a new trace when none is active, as from the CLI), Notification's handler span — and the relay
publishes the record in a span under it, so the consumer handling the record continues the same
trace. Rows of a table from before the `trace_context` column still relay, without a traceparent.

Each test reads only its own records: its own environment segment (topics) or flows (record keys),
and for raw outbox tables a schema of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from sqlalchemy import Engine, MetaData, Table, select, text

import schemas
from core.db import engine_for, ensure_schema
from core.settings import Settings
from core.tracing import scope
from messaging.outbox import OutboxRelay, encode_headers, enqueue, outbox_table, record_for
from messaging.outbox.delivery import deliver
from messaging.wiring import ensure_catalog_topics, keyring_from, producer_from
from services.common.commands import EntityCommands, build_commands, flow_id
from services.common.emitter import service_event_id
from services.common.outbox_services import service_tables
from services.identity.commands import IdentityCommands
from services.notification.rendering import CHANNELS
from services.notification.subscriptions import SUBSCRIPTIONS as NOTIFICATION
from services.order.flow import FlowRecord, read_flow
from services.product.commands import ProductCommands
from services.support.commands import SupportCommands
from tests.support.messaging_support import event, isolated, read_topic
from tests.support.otlp_receiver import OtlpReceiver, otlp_receiver
from tests.support.worker_process import CLI
from workers.consumers import build_consumer

pytestmark = pytest.mark.stack


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


def _ids(traceparent: str) -> tuple[str, str]:
    """(trace id, span id) of a `traceparent` value."""
    _, trace_id, span_id, _ = traceparent.split("-")
    return trace_id, span_id


def _record(settings: Settings, flow: uuid.UUID | str, event_type: str, since: int) -> FlowRecord:
    [record] = read_flow(settings, str(flow), [event_type], since)
    return record


def _row(engine: Engine, table: Table, event_id: uuid.UUID | str) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(table).where(table.c.event_id == str(event_id))).mappings().one())


def test_a_command_of_each_service_is_one_trace_from_its_span_through_the_relay_to_the_consumer(
    stack, settings: Settings, unique: str, receiver: OtlpReceiver
) -> None:
    """Recorded spans (OTLP): known span → `<service>.<command>` → `publish {topic}` (the relay) →
    `consume {topic}` → `handle {type}`; a command run with no span active is the root of its own."""
    local = isolated(settings, unique)
    since = int(time.time() * 1000) - 1000
    env = {**os.environ, "CF_ENV": local.env, "CF_TRACE_EXPORTER": "otlp",
           "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    run = subprocess.run([sys.executable, "-m", "tests.support.traced_outbox", unique], env=env,
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    spans, services = receiver.spans()
    assert services == {"traced-outbox"}
    by_id = {span.span_id.hex(): span for span in spans}
    children: dict[str, list] = {}
    for span in spans:
        children.setdefault(span.parent_span_id.hex(), []).append(span)

    def child(parent_id: str, name: str) -> Span:
        found = [s for s in children.get(parent_id, []) if s.name == name]
        names = [s.name for s in children.get(parent_id, [])]
        assert len(found) == 1, f"{name} under {by_id[parent_id].name}: {names}"
        return found[0]

    known = by_id[result["known"]["span"]]
    assert known.name == "known" and known.trace_id.hex() == result["known"]["trace"]
    *in_known, loose = result["events"]
    roots = [s for s in children[""] if s.name == loose["command"]]
    assert len(roots) == 1 and roots[0].trace_id != known.trace_id  # no span active: a trace of its own
    commands = [child(known.span_id.hex(), w["command"]) for w in in_known] + roots
    for written, command in zip([*in_known, loose], commands, strict=True):
        topic = schemas.topic_for(written["event_type"], env=local.env)
        publish = child(command.span_id.hex(), f"publish {topic}")  # the relay's, under the writer's span
        attributes = {a.key: a.value.string_value for a in publish.attributes}
        assert attributes["cloudfactory.event_id"] == written["event_id"]
        consume = child(publish.span_id.hex(), f"consume {topic}")
        handle = child(consume.span_id.hex(), f"handle {written['event_type']}")
        trace_id = command.trace_id.hex()
        assert {publish.trace_id.hex(), consume.trace_id.hex(), handle.trace_id.hex()} == {trace_id}
        assert result["handled"][written["event_id"]] == trace_id
        record = _record(local, written["flow"], written["event_type"], since)
        assert _ids(record.headers["traceparent"]) == (trace_id, publish.span_id.hex())
        assert record.signature_ok


def _identity(commands: EntityCommands, unique: str) -> tuple[uuid.UUID, str]:
    user = commands.register(f"tr-{unique}", f"ids-{unique}@example.com", "Ada")  # type: ignore[attr-defined]
    return flow_id("user", user), str(service_event_id("identity", f"user/{user}/registered"))


def _product(commands: EntityCommands, unique: str) -> tuple[uuid.UUID, str]:
    made = commands.create_product(f"SKU-IDS-{unique.upper()}", "VPS", "Servers", "compute",  # type: ignore[attr-defined]
                                   ["eu-west-1"])
    return flow_id("product", made), str(service_event_id("product", f"product/{made}/created"))


def _support(commands: EntityCommands, unique: str) -> tuple[uuid.UUID, str]:
    ticket = commands.open(f"tr-{unique}", uuid.uuid4(), "VPS unreachable")  # type: ignore[attr-defined]
    return flow_id("ticket", ticket), str(service_event_id("support", f"ticket/{ticket}/created"))


COMMANDS = {
    "identity": (IdentityCommands, _identity, "identity.user-registered"),
    "product": (ProductCommands, _product, "product.created"),
    "support": (SupportCommands, _support, "support.ticket-created"),
}


@pytest.mark.parametrize("service", sorted(COMMANDS))
def test_ids_only_the_relayed_record_carries_the_trace_of_the_span_the_command_ran_in(
    stack, settings: Settings, unique: str, service: str
) -> None:
    """The default (no exporter, ids only): the row keeps the command's span — a child of the known
    span — and the record on Kafka names a span of the relay under it, in the known span's trace."""
    factory, run, event_type = COMMANDS[service]
    tables = service_tables(service)
    commands = build_commands(settings, service, tables.metadata, tables.outbox, factory)
    since = int(time.time() * 1000) - 1000
    with scope("known") as known:
        flow, event_id = run(commands, unique)
    known_ids = (f"{known.get_span_context().trace_id:032x}", f"{known.get_span_context().span_id:016x}")
    assert deliver(settings, commands.engine, commands.emit, wait=True).published

    record = _record(settings, flow, event_type, since)
    relayed = _ids(record.headers["traceparent"])
    row = _row(commands.engine, tables.outbox, event_id)
    writer = _ids(row["trace_context"]["traceparent"])
    assert writer[0] == known_ids[0] and writer[1] != known_ids[1]  # the command's own span, in the trace
    assert relayed[0] == known_ids[0] and relayed[1] not in {known_ids[1], writer[1]}  # the relay's span
    assert [name for name, _ in row["headers"]].count("traceparent") == 0  # the relay adds the only one


def test_a_cli_command_run_with_no_span_opens_the_trace_its_event_carries(
    stack, settings: Settings, unique: str
) -> None:
    since = int(time.time() * 1000) - 1000
    run = subprocess.run([CLI, "identity", "register", "--tenant", f"tr-{unique}", "--email",
                          f"cli-{unique}@example.com", "--name", "Ada", "--wait"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    user = uuid.UUID(run.stdout.strip().splitlines()[-1])
    record = _record(settings, flow_id("user", user), "identity.user-registered", since)
    assert "traceparent" in record.headers, "the relayed event carries no trace context"
    relayed = _ids(record.headers["traceparent"])
    event_id = service_event_id("identity", f"user/{user}/registered")
    row = _row(engine_for(settings.dsn), service_tables("identity").outbox, event_id)
    writer = _ids(row["trace_context"]["traceparent"])  # the command's span, a root
    assert relayed[0] == writer[0] and relayed[1] != writer[1]  # the relay's span under it


@pytest.fixture
def old_outbox(stack, settings: Settings, unique: str) -> Iterator[tuple[Engine, Table]]:
    """An outbox table as a release before `trace_context` created it (today's shape without it)."""
    engine = engine_for(settings.dsn)
    table = outbox_table(MetaData(schema=f"outbox_trace_{unique}"))
    ensure_schema(engine, table.metadata)
    with engine.begin() as conn:
        conn.execute(text(f'ALTER TABLE "{table.schema}".outbox DROP COLUMN IF EXISTS trace_context'))
    yield engine, table
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{table.schema}" CASCADE'))


def test_a_row_of_an_older_table_without_the_column_still_relays_without_a_traceparent(
    settings: Settings, old_outbox: tuple[Engine, Table], unique: str
) -> None:
    engine, table = old_outbox
    local = isolated(settings, unique)
    ensure_catalog_topics(local, ["identity.email-verified"])
    keyring = keyring_from(settings).as_signer("identity")
    flow = uuid.uuid4()

    def verified() -> schemas.Envelope:
        data = {"userId": uuid.uuid4(), "email": "a@example.com"}
        return schemas.new_event("identity.email-verified", data, tenant_id=f"old-{unique}",
                                 correlation_id=flow, producer="identity-service",
                                 actor=schemas.Actor(id="tests", type=schemas.ActorType.SYSTEM))

    old_row = verified()
    record = record_for(old_row, keyring, env=local.env)
    older = Table("outbox", MetaData(schema=table.schema), autoload_with=engine)  # what the old writer saw
    assert "trace_context" not in older.c
    with engine.begin() as conn:
        conn.execute(older.insert().values(event_id=str(record.event_id), event_type=record.event_type,
                                           topic=record.topic, key=record.key, value=record.value,
                                           headers=encode_headers(record.headers)))

    # The new release starts: the column is added to the old table; the old row has none.
    assert ensure_schema(engine, table.metadata) == [f"column {table.fullname}.trace_context"]
    with scope("writer") as writer:
        new_row = verified()
        with engine.begin() as conn:
            enqueue(conn, table, record_for(new_row, keyring, env=local.env))
    relay = OutboxRelay(engine, table, producer_from(local, fallback=False))
    assert relay.drain().published == 2 and relay.pending() == 0
    assert _row(engine, table, old_row.event_id)["trace_context"] is None

    topic = schemas.topic_for("identity.email-verified", env=local.env)
    records = {schemas.decode(r.value()).event_id: dict(r.headers() or [])
               for r in read_topic(local, topic, expect=2)}
    assert set(records) == {old_row.event_id, new_row.event_id}
    assert "traceparent" not in records[old_row.event_id]  # relayed as stored, no crash
    new_trace = _ids(records[new_row.event_id]["traceparent"].decode())[0]
    assert new_trace == f"{writer.get_span_context().trace_id:032x}"


@pytest.fixture
def private_outbox(stack, settings: Settings, unique: str) -> Iterator[tuple[Engine, Table]]:
    engine = engine_for(settings.dsn)
    table = outbox_table(MetaData(schema=f"notification_trace_{unique}"))
    ensure_schema(engine, table.metadata)
    yield engine, table
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{table.schema}" CASCADE'))


def test_notification_reports_relayed_from_its_outbox_continue_the_trace_of_the_event_they_answer(
    settings: Settings, private_outbox: tuple[Engine, Table], unique: str
) -> None:
    engine, table = private_outbox
    local = isolated(settings, unique)
    ensure_catalog_topics(local, ["order.created", "notification.sent", "notification.failed"])
    trigger = event("order.created", tenant_id=f"ntr-{unique}")
    with scope("order") as order:
        producer_from(local, service="order", fallback=False).publish(trigger)
    trace_id = f"{order.get_span_context().trace_id:032x}"

    consumer = build_consumer(local, NOTIFICATION.with_outbox(table), group_id=f"notification-trace-{unique}")
    try:
        deadline = time.monotonic() + 60
        while len(rows := _rows(engine, table)) < len(CHANNELS):
            assert time.monotonic() < deadline, "the handler never queued its reports"
            consumer.poll_once(0.5)
    finally:
        consumer.close()
    assert {_ids(r["trace_context"]["traceparent"])[0] for r in rows} == {trace_id}  # the handler's span

    assert OutboxRelay(engine, table, producer_from(local, fallback=False)).drain().published == len(CHANNELS)
    sent = read_topic(local, schemas.topic_for("notification.sent", env=local.env), expect=len(CHANNELS))
    assert len(sent) == len(CHANNELS)
    relayed = [_ids(dict(r.headers())["traceparent"].decode()) for r in sent]
    assert {t for t, _ in relayed} == {trace_id}
    assert not {s for _, s in relayed} & {_ids(r["trace_context"]["traceparent"])[1] for r in rows}


def _rows(engine: Engine, table: Table) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(table.c.id)).mappings()]
