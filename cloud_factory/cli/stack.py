"""`cloud-factory stack up | down | status`: the local Kafka, Temporal and PostgreSQL.

The stack manager and Rich are imported inside the commands, so `--help` does not pay for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from cloud_factory.stack import ComponentStatus

app = typer.Typer(help="Start, inspect and stop the local stack (Kafka, Temporal, PostgreSQL).",
                  no_args_is_help=True)

#: Rich style per `ComponentState` value.
_STATE_STYLE = {"healthy": "green", "unhealthy": "yellow", "stopped": "dim", "foreign": "red"}


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def _print_table(statuses: list[ComponentStatus]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="cloud-factory stack")
    for column in ("component", "state", "address", "pid", "detail", "log"):
        table.add_column(column, overflow="fold")
    for st in statuses:
        table.add_row(st.name, f"[{_STATE_STYLE[st.state.value]}]{st.state.value}[/]", st.address,
                      str(st.pid or "-"), st.detail, str(st.log))
    Console().print(table)


def _print_workers() -> None:
    """Worker processes (informational: they never change the exit code)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from cloud_factory.stack.workers import worker_health
    from core.settings import get_settings

    rows = worker_health(get_settings().state_dir)
    if not rows:
        Console().print("workers: none running (start them with `cloud-factory worker all`)")
        return
    table = Table(title="workers")
    for column in ("pid", "kinds", "state", "last beat", "detail"):
        table.add_column(column, overflow="fold")
    style = {"healthy": "green", "degraded": "yellow", "stale": "red"}
    for row in rows:
        state = f"[{style[row.state]}]{row.state}[/]"
        table.add_row(str(row.pid), row.kinds, state, f"{row.last_beat_s:.0f}s ago", escape(row.detail))
    Console().print(table)


def _print_backlog() -> None:
    """What waits to reach Kafka: the file fallback spool and each outbox's pending rows (informational:
    never changes the exit code). Anything here for long means a broker or a relay is missing."""
    from rich.console import Console
    from sqlalchemy import func, inspect, select

    from core.db import engine_for
    from core.settings import get_settings
    from messaging.wiring import spool_from
    from services.common.outbox_services import OUTBOX_SERVICES, service_tables

    settings = get_settings()
    spool = spool_from(settings).status()
    parts = [f"fallback spool {spool.pending_records} pending"
             + (f", {spool.failed_records} failed line(s)" if spool.failed_records else "")]
    try:
        engine = engine_for(settings.dsn)
        with engine.connect() as conn:
            for service in OUTBOX_SERVICES:
                outbox = service_tables(service).outbox
                pending = 0  # no table yet: the service never ran here, so nothing waits
                if inspect(conn).has_table(outbox.name, schema=outbox.schema):
                    pending = conn.execute(select(func.count()).select_from(outbox)
                                           .where(outbox.c.published_at.is_(None))).scalar_one()
                parts.append(f"{service} outbox {pending} pending")
    except Exception as exc:  # noqa: BLE001 - informational only; the component table says what is down
        parts.append(f"outboxes unknown ({type(exc).__name__})")
    Console().print("backlog: " + "; ".join(parts))


@app.command()
def up() -> None:
    """Start every component that is not running and wait until all are healthy (safe to re-run)."""
    from cloud_factory.stack import Stack, StackError

    console = _stderr()
    stack = Stack()
    with console.status("starting the stack…") as spinner:
        def progress(component: str, message: str) -> None:
            spinner.update(f"{component}: {message}")
            if message in {"healthy", "already running"}:
                console.print(f"  {component}: {message}")

        try:
            statuses = stack.up(progress)
        except StackError as exc:
            console.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
    _print_table(statuses)


@app.command()
def status() -> None:
    """List each component with its address and state; exit 1 unless all are healthy."""
    from cloud_factory.stack import ComponentState, Stack

    statuses = Stack().status()
    _print_table(statuses)
    _print_workers()
    _print_backlog()
    if any(st.state is not ComponentState.HEALTHY for st in statuses):
        raise typer.Exit(1)


@app.command()
def down() -> None:
    """Stop what `stack up` started; state (topics, offsets, workflows, rows) is kept."""
    from cloud_factory.stack import Stack, StackError

    console = _stderr()
    try:
        Stack().down(lambda component, message: console.print(f"  {component}: {message}"))
    except StackError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
