"""`cloud-factory order place | pay | cancel | show`: the Order API on the command line.

The saga runs in the workers (`cloud-factory worker all`); these commands start, signal and
inspect it. `show` reads the workflow (status, step, compensation stack from its search attributes
and memo), the flow's events back from Kafka, and the flow's DLQ records.

Temporal, SQLAlchemy, the services and Rich are imported inside the commands that use them, so that
`--help` (which builds every command's options) starts in a few tens of milliseconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from cloud_factory.choices import FAIL_POINTS

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(no_args_is_help=True)

__all__ = ["app"]


def _console() -> Console:
    from rich.console import Console

    return Console()


def _ui_link(workflow_id: str) -> str:
    from core.settings import get_settings

    settings = get_settings()
    return f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"


def _workflow_id(order: str, tenant: str | None) -> str:
    if order.startswith("order-"):
        return order
    if not tenant:
        raise typer.BadParameter(
            "give the workflow id (order-<tenant>-<order id>) or --tenant with the order id"
        )
    return f"order-{tenant}-{order}"


async def _client():
    from core.settings import get_settings
    from core.temporal import connect_client

    return await connect_client(get_settings())


@app.command()
def place(
    tenant: str = typer.Option(..., "--tenant", help="Tenant placing the order."),
    plan: str = typer.Option("vm-standard-2", "--plan", help="Plan slug, e.g. vm-standard-2."),
    region: str = typer.Option("eu-west-1", "--region"),
    fail_at: str | None = typer.Option(
        None, "--fail-at", help=f"Inject a failure: {', '.join(FAIL_POINTS)}."
    ),
    pay: bool = typer.Option(
        True, "--pay/--no-pay", help="Report the payment right away (else: `order pay`)."
    ),
    wait: bool = typer.Option(False, "--wait", help="Wait for the saga to finish and print its outcome."),
) -> None:
    """Start an order saga (workers must be running: `cloud-factory worker all`)."""
    import asyncio

    from cloud_factory.faults import place_failing
    from core.db import engine_for
    from core.settings import get_settings
    from services.order.api import new_order
    from workers.options import WorkerOptions

    console = _console()
    if fail_at is not None and fail_at not in FAIL_POINTS:
        raise typer.BadParameter(f"--fail-at must be one of {', '.join(FAIL_POINTS)}, not {fail_at!r}")
    try:
        order = new_order(tenant, plan, region=region)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    async def go() -> str | None:
        from services.order.api import wait_for_outcome

        client = await _client()
        placing = place_failing(
            client,
            engine_for(get_settings().dsn),
            order,
            fail_at,
            pay=pay,
            task_queue=WorkerOptions.from_env().task_queue,
        )
        try:  # with the payment, placing waits until a saga worker has recorded it
            placed = await asyncio.wait_for(placing, 30)
        except TimeoutError:
            raise TimeoutError(f"{order.workflow_id} started, but no saga worker took its payment "
                               "within 30 s; is `cloud-factory worker all` running?") from None
        if not wait:
            return None
        outcome = await wait_for_outcome(placed.handle)
        if outcome.needs_a_person:
            return (f"{outcome.status}: waits for a person "
                    f"(`cloud-factory incident show {outcome.incident_id}`)")
        return outcome.status

    status = asyncio.run(go())
    console.print(
        f"order [bold]{order.order_id}[/] placed for tenant {tenant} (workflow {order.workflow_id})"
    )
    if status:
        console.print(f"outcome: [bold]{status}[/]")
    console.print(f"Temporal UI: {_ui_link(order.workflow_id)}")


@app.command()
def pay(
    order: str = typer.Argument(..., help="Workflow id, or order id with --tenant."),
    tenant: str | None = typer.Option(None, "--tenant"),
    declined: bool = typer.Option(False, "--declined", help="Report a declined payment instead."),
) -> None:
    """Report the payment outcome of an order placed with --no-pay."""
    import asyncio

    console = _console()
    receipt = asyncio.run(_pay(_workflow_id(order, tenant), declined))
    console.print(receipt)


async def _pay(workflow_id: str, declined: bool) -> str:
    """The `pay` / `decline_payment` Update; a refusal is one `error:` line (the saga's reason)."""
    from services.order.api import pay_order

    return await pay_order(await _client(), workflow_id, declined=declined)


@app.command()
def cancel(
    order: str = typer.Argument(..., help="Workflow id, or order id with --tenant."),
    tenant: str | None = typer.Option(None, "--tenant"),
    note: str | None = typer.Option(None, "--note"),
) -> None:
    """Cancel an order before delivery: the saga compensates what it did, newest first."""
    import asyncio

    from services.order.api import cancel_order

    console = _console()
    workflow_id = _workflow_id(order, tenant)

    async def go() -> str:
        return await cancel_order(await _client(), workflow_id, note=note)

    console.print(f"{workflow_id}: {asyncio.run(go())}")


@app.command()
def show(
    order: str = typer.Argument(..., help="Workflow id, or order id with --tenant."),
    tenant: str | None = typer.Option(None, "--tenant"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Status, compensation stack, event timeline (Kafka + workflow history), DLQ entries, UI link."""
    import asyncio
    import datetime as dt
    import json

    from rich.table import Table

    from cloud_factory.cli.errors import require_kafka
    from core.settings import get_settings
    from services.order.inspect import inspect_order

    console = _console()
    require_kafka()  # the timeline is read back from Kafka: one line at once when it is down
    report = asyncio.run(inspect_order(get_settings(), _workflow_id(order, tenant)))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2, default=str))
        return
    console.print(
        f"[bold]{report.workflow_id}[/]  status=[bold]{report.status}[/] step={report.step} "
        f"({report.execution_status})"
    )
    console.print(f"correlationId {report.correlation_id}  tenant {report.tenant_id}")
    if report.outcome:
        console.print(report.outcome)
    console.print(
        "compensation stack (next undo first): " + (", ".join(report.compensation_stack) or "empty")
    )
    if report.incident_id:
        console.print(f"[red]waits for a person[/]: incident {report.incident_id} — "
                      f"`cloud-factory incident retry|resolve {report.incident_id}`")
    table = Table(title="event timeline (Kafka)")
    for column in ("time", "event type", "event id", "causation", "signature"):
        table.add_column(column)
    for event in report.events:
        table.add_row(
            dt.datetime.fromtimestamp(event["timestampMs"] / 1000).strftime("%H:%M:%S.%f")[:-3],
            event["eventType"],
            event["eventId"][:8],
            (event["causationId"] or "-")[:8],
            "valid" if event["signatureOk"] else "[red]INVALID[/]",
        )
    console.print(table)
    console.print(
        f"workflow history: {report.history_events} events, {report.activities} activities, "
        f"{report.signals} signals"
    )
    console.print(f"DLQ entries of this flow: {len(report.dlq)}")
    for entry in report.dlq:
        console.print(f"  {entry['topic']}: {entry['errorClass']} — {entry['reason']}")
    console.print(f"Temporal UI: {_ui_link(report.workflow_id)}")
