"""`cloud-factory incident list | show | retry | resolve`: the sagas that wait for a person.

A saga whose undo could not finish opens an `OrderIncident` workflow and waits. `retry` asks it to
run the failed undos again (newest first) once the cause is fixed; `resolve --note` records what a
person did by hand. Both are Updates: the incident refuses a second decision or a resolution
without a note, and the refusal is one line with exit 1. Heavy imports stay inside the commands so
`--help` starts fast.
"""

from __future__ import annotations

import asyncio

import typer

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Sagas whose compensation failed and wait for a person.")


def _desk():  # noqa: ANN202 - the module, imported when a command runs
    from services.order import incident_desk

    return incident_desk


async def _client():  # noqa: ANN202
    from core.settings import get_settings
    from core.temporal import connect_client

    return await connect_client(get_settings())


def _ui_link(workflow_id: str) -> str:
    from core.settings import get_settings

    settings = get_settings()
    return f"{settings.temporal_ui_url}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"


@app.command("list")
def list_(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant's incidents."),
    all_: bool = typer.Option(False, "--all", help="Also the decided and expired ones."),
) -> None:
    """The incidents that wait for a person (newest first)."""

    async def go() -> list:
        return await _desk().list_incidents(await _client(), tenant=tenant, open_only=not all_)

    views = asyncio.run(go())
    if not views:
        typer.echo("no incident waits for a person" if not all_ else "no incidents")
        return
    for view in views:
        ticket = view.ticket
        saga = ticket.saga_workflow_id if ticket else "?"
        decided = f"  decided: {view.decision.action}" if view.decision else ""
        typer.echo(f"{view.incident_id}  {view.status}  saga {saga}  "
                   f"failed: {', '.join(view.failed_steps) or '?'}{decided}")


@app.command()
def show(reference: str = typer.Argument(..., help="Incident id, or the saga's workflow id.")) -> None:
    """What failed, what was undone, and the decision once made."""

    async def go():  # noqa: ANN202
        return await _desk().show_incident(await _client(), reference)

    view = asyncio.run(go())
    typer.echo(f"{view.incident_id}  {view.status}" + ("  (waits for a person)" if view.waiting else ""))
    if view.ticket is not None:
        ticket = view.ticket
        typer.echo(f"saga {ticket.saga_workflow_id}  order {ticket.order_id}  tenant {ticket.tenant_id}  "
                   f"incident {ticket.attempt}")
        typer.echo(f"failed: {', '.join(view.failed_steps)}")
        typer.echo(f"undone: {', '.join(str(s) for s in ticket.completed_steps) or 'nothing'}")
        typer.echo(f"why: {ticket.reason}")
    if view.decision is not None:
        by = f" by {view.decision.by}" if view.decision.by else ""
        typer.echo(f"decision: {view.decision.action}{by}"
                   + (f" — {view.decision.note}" if view.decision.note else ""))
    typer.echo(f"Temporal UI: {_ui_link(view.incident_id)}")


@app.command()
def retry(
    reference: str = typer.Argument(..., help="Incident id, or the saga's workflow id."),
    by: str = typer.Option("operator", "--by", help="Who decides (recorded with the incident)."),
    wait: float = typer.Option(0.0, "--wait", help="Seconds to wait for the saga's new outcome (0: don't)."),
) -> None:
    """Run the failed undos again, newest first (fix their cause first)."""

    async def go() -> tuple[str, str | None]:
        client = await _client()
        desk = _desk()
        incident_id = await desk.find_incident(client, reference)
        receipt = await desk.retry_incident(client, incident_id, by=by)
        if wait <= 0:
            return receipt, None
        view = await desk.show_incident(client, incident_id)
        saga = view.ticket.saga_workflow_id if view.ticket else None
        if saga is None:
            return receipt, None
        from services.order.api import wait_for_outcome

        handle = client.get_workflow_handle(saga)
        # The retry first runs the undos; the old incident id stays in the status until then.
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            outcome = await wait_for_outcome(handle,
                                             timeout=max(deadline - asyncio.get_running_loop().time(), 0.1))
            if outcome.incident_id != incident_id:
                break
            await asyncio.sleep(0.5)
        if outcome.needs_a_person:
            return receipt, f"the undos failed again: incident {outcome.incident_id} waits for a person"
        return receipt, f"the saga ended {outcome.status}"

    receipt, outcome = asyncio.run(go())
    typer.echo(receipt)
    if outcome:
        typer.echo(outcome)


@app.command()
def resolve(
    reference: str = typer.Argument(..., help="Incident id, or the saga's workflow id."),
    note: str = typer.Option(..., "--note", help="What was done by hand (carried in order.failed)."),
    by: str = typer.Option("operator", "--by", help="Who decides (recorded with the incident)."),
) -> None:
    """Record that a person fixed it by hand; the saga ends `resolved_manually` with `order.failed`."""

    async def go() -> str:
        return await _desk().resolve_incident(await _client(), reference, note=note, by=by)

    typer.echo(asyncio.run(go()))
