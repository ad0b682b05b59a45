"""`cloud-factory demo`: the README's main job (expects `cloud-factory stack up` first).

The demo pulls in the workers, Temporal, SQLAlchemy and Rich: all of it is imported when it runs,
never for `--help`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from cloud_factory.demo import DemoOrder, DemoSummary

app = typer.Typer()

_STYLE = {
    "delivered": "green",
    "compensated": "yellow",
    "cancelled": "cyan",
    "payment_failed": "magenta",
    "compensation_failed": "red",
    "resolved_manually": "blue",
}


def _progress(orders: list[DemoOrder]) -> Table:
    from rich.table import Table

    table = Table(title="order sagas (live)")
    for column in ("#", "tenant", "plan", "scenario", "status", "step", "seconds"):
        table.add_column(column)
    for index, item in enumerate(orders, start=1):
        order = item.placed.order
        style = _STYLE.get(item.status, "white")
        table.add_row(
            str(index),
            order.tenant_id,
            order.plan_id,
            item.scenario,
            f"[{style}]{item.status}[/]",
            item.step,
            f"{item.seconds:.1f}" if item.seconds is not None else "…",
        )
    return table


def _summary(console: Console, summary: DemoSummary) -> None:
    from rich.table import Table

    outcomes = Table(title="outcomes")
    outcomes.add_column("outcome")
    outcomes.add_column("orders", justify="right")
    for outcome, count in sorted(summary.outcomes.items()):
        outcomes.add_row(f"[{_STYLE.get(outcome, 'white')}]{outcome}[/]", str(count))
    console.print(outcomes)
    events = Table(title="events per type (read back from Kafka)")
    events.add_column("event type")
    events.add_column("count", justify="right")
    for event_type, count in sorted(summary.events_per_type.items()):
        events.add_row(event_type, str(count))
    console.print(events)
    console.print(
        f"DLQ records of these flows: {summary.dlq}    duplicates suppressed: "
        f"{summary.duplicates_suppressed}    notifications stored: {summary.notifications}    "
        f"elapsed: {summary.elapsed_s:.1f}s"
    )
    console.print(f"Inspect the sagas in the Temporal Web UI: [link={summary.ui_url}]{summary.ui_url}[/link]")
    console.print("One order in detail: cloud-factory order show <workflow id>")
    for item in summary.orders:
        if item.incident_id:
            console.print(
                f"[red]needs a person[/]: {item.placed.order.workflow_id} — decide with "
                f"`cloud-factory incident retry {item.incident_id}` or "
                f"`cloud-factory incident resolve {item.incident_id} --note \"…\"`"
            )


@app.callback(invoke_without_command=True)
def demo(
    orders: int = typer.Option(20, "--orders", min=1, max=200, help="How many orders to place."),
) -> None:
    """Place ~20 orders across 3 tenants (some set up to fail), follow them live, summarise."""
    import asyncio

    from rich.console import Console
    from rich.live import Live

    from cloud_factory.demo import run_demo
    from cloud_factory.stack import ComponentState, Stack
    from core.settings import get_settings

    console = Console()
    settings = get_settings()
    unhealthy = [st.name for st in Stack(settings).status() if st.state is not ComponentState.HEALTHY]
    if unhealthy:
        typer.echo(f"error: not healthy: {', '.join(unhealthy)}; run `cloud-factory stack up` first",
                   err=True)
        raise typer.Exit(1)
    with Live(console=console, refresh_per_second=4) as live:
        summary = asyncio.run(
            run_demo(
                settings,
                orders=orders,
                say=lambda text: live.console.print(f"  {text}"),
                on_progress=lambda items: live.update(_progress(items)),
            )
        )
    _summary(console, summary)
    if summary.outcomes.get("starting"):
        raise typer.Exit(1)
