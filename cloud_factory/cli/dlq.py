"""`cloud-factory dlq list | show | redrive | discard | run`: dead-lettered records and their outcomes.

Records are read from the DLQ topics themselves (the source of truth); the outcome column comes
from the audit rows in PostgreSQL. A record is named by its DLQ position `topic:partition:offset`.
"""

from __future__ import annotations

import json
import threading

import typer
from rich.console import Console
from rich.table import Table

import schemas
from cloud_factory.db import engine_for
from cloud_factory.settings import get_settings
from messaging.dlq_admin import DlqEntry, discard, list_dlq, read_entry, redrive
from messaging.dlq_store import DlqPosition, DlqStore

app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)


def _store() -> DlqStore:
    return DlqStore(engine_for(get_settings().dsn))


def _entry(position: str) -> DlqEntry:
    try:
        return read_entry(get_settings().bootstrap_servers, DlqPosition.parse(position))
    except (ValueError, LookupError) as exc:
        console.print(f"[red]error:[/] {exc} (expected topic:partition:offset, see `dlq list`)")
        raise typer.Exit(1) from None


@app.command("list")
def list_(contains: str = typer.Option("", "--topic", help="Only DLQ topics whose name contains this."),
          limit: int = typer.Option(50, help="At most this many records (newest first)."),
          as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
    """Dead-lettered records, newest first, with error class, attempts and outcome."""
    settings = get_settings()
    entries = list_dlq(settings.bootstrap_servers, env=settings.env, contains=contains, limit=limit)
    outcomes = _store().outcomes([e.position for e in entries])
    if as_json:
        for e in entries:
            row = outcomes.get(e.position, {})
            typer.echo(json.dumps({"position": str(e.position), "eventType": e.letter.event_type,
                                   "eventId": e.letter.event_id, "errorClass": e.letter.error_class.value,
                                   "attempts": e.letter.attempts, "reason": e.letter.reason,
                                   "outcome": row.get("outcome", "pending"), "incident": row.get("incident")}))
        return
    table = Table(title=f"DLQ ({len(entries)} records)")
    for column in ("position", "event type", "class", "attempts", "reason", "outcome"):
        table.add_column(column, overflow="fold")
    for e in entries:
        row = outcomes.get(e.position, {})
        outcome = row.get("outcome", "pending") + (f" (incident {row['incident']})" if row.get("incident") else "")
        table.add_row(str(e.position), e.letter.event_type or "?", e.letter.error_class.value,
                      str(e.letter.attempts), e.letter.reason[:80], outcome)
    Console().print(table)


@app.command()
def show(position: str = typer.Argument(..., help="topic:partition:offset of the DLQ record.")) -> None:
    """Everything about one record: failure details, headers and the decoded event (if it decodes)."""
    entry = _entry(position)
    letter = entry.letter
    detail = {
        "position": str(entry.position), "originalTopic": letter.original_topic,
        "originalPartition": letter.original_partition, "originalOffset": letter.original_offset,
        "errorClass": letter.error_class.value, "exception": letter.exception, "reason": letter.reason,
        "attempts": letter.attempts, "dlqRetries": letter.dlq_retries, "handler": letter.handler,
        "group": letter.group, "firstFailure": letter.first_failure.isoformat(),
        "lastFailure": letter.last_failure.isoformat(),
        "headers": {k: v.decode(errors="replace") for k, v in letter.headers},
        "outcome": _store().outcomes([entry.position]).get(entry.position, {}).get("outcome", "pending"),
    }
    try:
        detail["event"] = json.loads(schemas.encode(schemas.decode(letter.value)))
    except schemas.ContractError as exc:
        detail["undecodable"] = str(exc)
        detail["value"] = letter.value.decode(errors="replace")[:2000]
    typer.echo(json.dumps(detail, indent=2, default=str))


@app.command("redrive")
def redrive_(position: str = typer.Argument(..., help="topic:partition:offset of the DLQ record."),
             note: str = typer.Option("", help="Why (kept in the audit row).")) -> None:
    """Re-publish to the original topic, upcast to the latest version and re-signed (same eventId)."""
    from messaging.wiring import producer_from

    entry = _entry(position)
    producer = producer_from(get_settings())
    try:
        delivery = redrive(entry, producer, _store(), note=note)
    except schemas.ContractError as exc:
        console.print(f"[red]cannot redrive:[/] the record does not decode ({exc}); use `dlq discard`")
        raise typer.Exit(1) from None
    finally:
        producer.close()
    where = "spooled (Kafka unreachable)" if delivery.spooled else f"{delivery.topic}[{delivery.partition}]@{delivery.offset}"
    typer.echo(f"redriven {position} → {where}")


@app.command("discard")
def discard_(position: str = typer.Argument(..., help="topic:partition:offset of the DLQ record."),
             reason: str = typer.Option(..., help="Why it is abandoned (kept in the audit row).")) -> None:
    """Abandon a record on purpose; an audit row records it (and resolves its incident)."""
    record_id = discard(_entry(position), _store(), reason=reason)
    typer.echo(f"discarded {position} (audit row {record_id})")


@app.command()
def run(group_id: str = typer.Option("dlq-processor", help="Consumer group of the DLQ processor."),
        alert_threshold: int = typer.Option(10, help="Alert above this many DLQ records per topic per hour.")) -> None:
    """Apply the four DLQ outcomes (retry, discard, alert, manual review) until SIGTERM."""
    import signal

    from cloud_factory.logs import configure_logging
    from messaging.dlq import DlqProcessor, dlq_pattern
    from messaging.wiring import producer_from

    configure_logging()
    settings = get_settings()
    processor = DlqProcessor(settings.bootstrap_servers, producer=producer_from(settings), store=_store(),
                             topics=[dlq_pattern(settings.env)], group_id=group_id,
                             alert_threshold=alert_threshold)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    processor.run(stop)
