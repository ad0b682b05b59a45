"""`cloud-factory dlq list | show | redrive | discard | parked | run`: dead-lettered and parked records.

Dead letters are read from the DLQ topics themselves (the source of truth); the outcome column comes
from the audit rows in PostgreSQL, and so does the whole value of a record dead-lettered as a
reference. A dead letter is named by its DLQ position `<topic>.dlq:partition:offset`; a parked record
(kept in PostgreSQL because the DLQ kept refusing it) by its original `topic:partition:offset`, so
`show` and `redrive` take either. Bad input and unreachable services end in one line on stderr.

The DLQ runtime, SQLAlchemy, the contract and Rich are imported inside the commands, so `--help`
pays for none of them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from cloud_factory.cli.errors import explain, require_kafka

if TYPE_CHECKING:
    from messaging.dlq.admin import DlqEntry
    from messaging.dlq.parking import ParkedRecord, ParkingLot
    from messaging.dlq.store import DlqPosition, DlqStore

app = typer.Typer(no_args_is_help=True)

#: Client-side record limit when re-publishing a parked record: the broker (which took the record
#: once) decides, not librdkafka's 1 MB default.
_PARKED_MAX_BYTES = 16 * 1024 * 1024


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)  # plain: positions like a:b:c are no emoji codes
    raise typer.Exit(1)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """A database or broker that cannot be reached is one line, not a traceback."""
    from sqlalchemy import exc as sa

    from messaging.errors import PublishError
    from messaging.signing_keys import SigningKeysError

    try:
        yield
    except (sa.OperationalError, sa.InterfaceError) as exc:
        _fail(explain(exc))
    except PublishError as exc:
        _fail(f"Kafka did not take the record: {exc}")
    except SigningKeysError as exc:
        _fail(str(exc))
    except OverflowError:
        _fail("that partition or offset is out of range (see `dlq list` or `dlq parked`)")


def _store() -> DlqStore:
    from core.db import engine_for
    from core.settings import get_settings
    from messaging.dlq.store import DlqStore

    return DlqStore(engine_for(get_settings().dsn))


def _lot() -> ParkingLot:
    from core.db import engine_for
    from core.settings import get_settings
    from messaging.dlq.parking import ParkingLot

    return ParkingLot(engine_for(get_settings().dsn))


def _position(text: str) -> DlqPosition:
    from messaging.dlq.store import DlqPosition

    try:
        return DlqPosition.parse(text)
    except ValueError as exc:
        _fail(f"{exc} (see `dlq list` or `dlq parked`)")


def _is_dlq(position: DlqPosition) -> bool:
    import schemas

    return schemas.is_dlq_topic(position.topic)


def _entry(position: DlqPosition) -> DlqEntry:
    from confluent_kafka import KafkaError, KafkaException

    from core.settings import get_settings
    from messaging.dlq.admin import read_entry

    require_kafka()
    try:
        return read_entry(get_settings().bootstrap_servers, position)
    except LookupError as exc:
        _fail(f"{exc} (expected topic:partition:offset, see `dlq list`)")
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.code() in (KafkaError._UNKNOWN_PARTITION,
                                                              KafkaError._UNKNOWN_TOPIC,
                                                              KafkaError.UNKNOWN_TOPIC_OR_PART):
            _fail(f"no DLQ record at {position}: Kafka has no such topic or partition (see `dlq list`)")
        raise


def _parked_at(position: DlqPosition) -> list[ParkedRecord]:
    rows = _lot().at(position)
    if not rows:
        _fail(f"nothing is parked at {position} (see `dlq parked`; DLQ records are named <topic>.dlq:…)")
    return rows


def _decoded(value: bytes) -> dict[str, object]:
    import schemas

    try:
        return {"event": json.loads(schemas.encode(schemas.decode(value)))}
    except schemas.ContractError as exc:
        return {"undecodable": str(exc), "value": value.decode(errors="replace")[:2000]}


def _age(since: dt.datetime) -> str:
    seconds = max(0.0, (dt.datetime.now(dt.UTC) - since).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


@app.command("list")
def list_(contains: str = typer.Option("", "--topic", help="Only DLQ topics whose name contains this."),
          limit: int = typer.Option(50, help="At most this many records (newest first)."),
          as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
    """Dead-lettered records, newest first, with error class, attempts and outcome."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from core.settings import get_settings
    from messaging.dlq.admin import list_dlq

    settings = get_settings()
    require_kafka()
    with _one_line_errors():
        entries = list_dlq(settings.bootstrap_servers, env=settings.env, contains=contains, limit=limit)
        outcomes = _store().outcomes([e.position for e in entries])
    if as_json:
        for e in entries:
            row = outcomes.get(e.position, {})
            typer.echo(json.dumps({"position": str(e.position), "eventType": e.letter.event_type,
                                   "eventId": e.letter.event_id, "errorClass": e.letter.error_class.value,
                                   "attempts": e.letter.attempts, "reason": e.letter.reason,
                                   "valueSize": e.letter.value_size or len(e.letter.value),
                                   "reference": e.letter.is_reference,
                                   "outcome": row.get("outcome", "pending"),
                                   "incident": row.get("incident")}))
        return
    table = Table(title=f"DLQ ({len(entries)} records)")
    for column in ("position", "event type", "class", "attempts", "reason", "outcome"):
        table.add_column(column, overflow="fold")
    for e in entries:
        row = outcomes.get(e.position, {})
        outcome = row.get("outcome", "pending") + (f" (incident {row['incident']})"
                                                   if row.get("incident") else "")
        reference = f" [reference: {e.letter.value_size} B]" if e.letter.is_reference else ""
        table.add_row(str(e.position), e.letter.event_type or "?", e.letter.error_class.value,
                      str(e.letter.attempts), escape(e.letter.reason[:80] + reference), outcome)
    Console().print(table)


@app.command()
def show(position: str = typer.Argument(..., help="<topic>.dlq:partition:offset of a DLQ record, or "
                                                  "topic:partition:offset of a parked one."),
         value_file: Path | None = typer.Option(
             None, "--value-file", help="Also write the record's whole value (raw bytes) here.")) -> None:
    """Everything about one record: failure details, headers and the decoded event (if it decodes)."""
    where = _position(position)
    with _one_line_errors():
        detail, value = _show_dlq(where) if _is_dlq(where) else _show_parked(where)
    if value_file is not None:
        try:
            value_file.write_bytes(value)
        except OSError as exc:
            _fail(f"cannot write {value_file}: {exc.strerror or exc}")
    typer.echo(json.dumps({**detail, **_decoded(value)}, indent=2, default=str))


def _show_dlq(position: DlqPosition) -> tuple[dict[str, object], bytes]:
    entry = _entry(position)
    letter = entry.letter
    store = _store()
    detail: dict[str, object] = {
        "position": str(entry.position), "originalTopic": letter.original_topic,
        "originalPartition": letter.original_partition, "originalOffset": letter.original_offset,
        "errorClass": letter.error_class.value, "exception": letter.exception, "reason": letter.reason,
        "attempts": letter.attempts, "dlqRetries": letter.dlq_retries, "handler": letter.handler,
        "group": letter.group, "firstFailure": letter.first_failure.isoformat(),
        "lastFailure": letter.last_failure.isoformat(),
        "headers": {k: v.decode(errors="replace") for k, v in letter.headers},
        "outcome": store.outcomes([entry.position]).get(entry.position, {}).get("outcome", "pending"),
    }
    if letter.is_reference:
        detail["reference"] = {"size": letter.value_size, "sha256": letter.value_sha256,
                               "storedIn": "postgresql"}
    try:
        return detail, store.full_value(letter)
    except LookupError as exc:
        _fail(str(exc))


def _show_parked(position: DlqPosition) -> tuple[dict[str, object], bytes]:
    rows = _parked_at(position)
    record = rows[0]
    detail: dict[str, object] = {
        "position": str(record.position), "parked": True, "status": record.status,
        "groups": [row.group_id for row in rows], "size": record.size, "sha256": record.value_sha256,
        "errorClass": record.error_class, "reason": record.reason, "dlqError": record.dlq_error,
        "attempts": record.attempts, "handler": record.handler,
        "firstFailure": record.first_failure.isoformat() if record.first_failure else None,
        "parkedAt": record.parked_at.isoformat(),
        "redrivenAt": record.redriven_at.isoformat() if record.redriven_at else None,
        "headers": {k: v.decode(errors="replace") for k, v in record.headers},
    }
    return detail, record.value


@app.command("redrive")
def redrive_(position: str = typer.Argument(..., help="<topic>.dlq:partition:offset of a DLQ record, or "
                                                      "topic:partition:offset of a parked one."),
             note: str = typer.Option("", help="Why (kept in the audit row)."),
             force_resign: bool = typer.Option(
                 False, "--force-resign",
                 help="Re-sign a DLQ record whose own signature does not verify or whose signer may not "
                      "publish it (only after checking it by hand).")) -> None:
    """Re-publish to the original topic: a DLQ record upcast to the latest version and re-signed as its
    type's publisher (same eventId) — only when its own signature vouches for it, unless
    --force-resign; a parked record exactly as it was (key, value, headers), then marked redriven."""
    import schemas
    from core.settings import get_settings
    from messaging.dlq.admin import redrive
    from messaging.dlq.parking import redrive_parked
    from messaging.errors import PermissionDeniedError
    from messaging.wiring import producer_from

    where = _position(position)
    with _one_line_errors():
        if _is_dlq(where):
            entry, store = _entry(where), _store()
            producer = producer_from(get_settings())
            try:
                delivery = redrive(entry, producer, store, note=note, force_resign=force_resign)
            except PermissionDeniedError as exc:
                _fail(f"cannot redrive: {exc} (check it, then --force-resign, or `dlq discard`)")
            except schemas.SignatureError as exc:
                _fail(f"cannot redrive: {exc.reason}")
            except schemas.ContractError as exc:
                _fail(f"cannot redrive: the record does not decode ({exc}); use `dlq discard`")
            except LookupError as exc:
                _fail(f"cannot redrive: {exc}")
            finally:
                producer.close()
        else:
            lot = _lot()
            _parked_at(where)
            producer = producer_from(get_settings(), extra_config={"message.max.bytes": _PARKED_MAX_BYTES})
            try:
                delivery = redrive_parked(where, producer, lot, note=note)
            except LookupError as exc:
                _fail(f"cannot redrive: {exc}")
            finally:
                producer.close()
    target = ("spooled (Kafka unreachable)" if delivery.spooled
              else f"{delivery.topic}[{delivery.partition}]@{delivery.offset}")
    typer.echo(f"redriven {where} → {target}")


@app.command("discard")
def discard_(position: str = typer.Argument(..., help="<topic>.dlq:partition:offset of a DLQ record, or "
                                                      "topic:partition:offset of a parked one."),
             reason: str = typer.Option(..., help="Why it is abandoned (kept in the audit row).")) -> None:
    """Abandon a record on purpose; an audit row records it (and resolves its incident). A parked
    record stays in its table, marked discarded with the reason."""
    from messaging.dlq.admin import discard
    from messaging.dlq.parking import discard_parked

    where = _position(position)
    with _one_line_errors():
        if _is_dlq(where):
            record_id = discard(_entry(where), _store(), reason=reason)
            typer.echo(f"discarded {where} (audit row {record_id})")
            return
        lot = _lot()
        _parked_at(where)
        try:
            settled = discard_parked(where, lot, reason=reason)
        except LookupError as exc:
            _fail(f"cannot discard: {exc}")
    typer.echo(f"discarded parked {where} ({settled} row(s))")


@app.command("parked")
def parked_(include_redriven: bool = typer.Option(False, "--all",
                                                  help="Include records already redriven or discarded."),
            limit: int = typer.Option(100, help="At most this many records (oldest first)."),
            as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
    """Records of this environment parked because the DLQ kept refusing them, one line each: position,
    size, class, group, age and why (bring one back with `dlq redrive TOPIC:PARTITION:OFFSET`)."""
    from core.settings import get_settings

    prefix = f"cloud-factory.{get_settings().env}."
    with _one_line_errors():
        records = _lot().records(topic_prefix=prefix, include_redriven=include_redriven, limit=limit)
    for r in records:
        if as_json:
            typer.echo(json.dumps({
                "position": str(r.position), "group": r.group_id, "size": r.size, "sha256": r.value_sha256,
                "eventType": r.event_type, "eventId": r.event_id, "errorClass": r.error_class,
                "reason": r.reason, "dlqError": r.dlq_error, "attempts": r.attempts, "status": r.status,
                "parkedAt": r.parked_at.isoformat(), "ageS": round((dt.datetime.now(dt.UTC) - r.parked_at)
                                                                    .total_seconds(), 1)}))
            continue
        status = "" if r.status == "parked" else f" [{r.status}]"
        typer.echo(f"{r.position}  {r.size} B  {r.error_class}  group {r.group_id}  "
                   f"parked {_age(r.parked_at)} ago{status}  {r.reason[:120]} (DLQ: {r.dlq_error[:120]})")
    if not records and not as_json:
        typer.echo("nothing parked")


@app.command()
def run(group_id: str = typer.Option("dlq-processor", help="Consumer group of the DLQ processor."),
        alert_threshold: int = typer.Option(
            10, help="Alert above this many DLQ records per topic per hour.")) -> None:
    """Apply the four DLQ outcomes (retry, discard, alert, manual review) until SIGTERM."""
    import signal
    import threading

    import schemas
    from core.logs import configure_logging
    from core.settings import get_settings
    from messaging.dlq.processor import DlqProcessor
    from messaging.wiring import producer_from
    from workers.heartbeat import Heartbeat
    from workers.state_dir import require_writable

    configure_logging()
    settings = get_settings()
    require_writable(settings.state_dir, settings.spool_dir)
    require_kafka()
    with _one_line_errors():
        processor = DlqProcessor(settings.bootstrap_servers, producer=producer_from(settings), store=_store(),
                                 topics=[schemas.dlq_topics_pattern(settings.env)], group_id=group_id,
                                 alert_threshold=alert_threshold)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # The heartbeat `cloud-factory health` (the container's healthcheck) and `stack status` read.
    heartbeat = threading.Thread(target=Heartbeat(settings.state_dir, ["dlq"]).run_blocking, args=(stop,),
                                 name="dlq-heartbeat", daemon=True)
    heartbeat.start()
    try:
        processor.run(stop)
    finally:
        stop.set()
        heartbeat.join(timeout=5)
