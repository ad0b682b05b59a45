"""`cloud-factory demo`: the README's main job (expects `cloud-factory stack up` first)."""

from __future__ import annotations

import asyncio
import json

import typer
from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax

from cloud_factory.demo import run_demo
from cloud_factory.settings import get_settings
from cloud_factory.stack import ComponentState, Stack

app = typer.Typer()
console = Console()


@app.callback(invoke_without_command=True)
def demo() -> None:
    """Run one order through the real stack and print the verified event and the Temporal UI link."""
    settings = get_settings()
    unhealthy = [st.name for st in Stack(settings).status() if st.state is not ComponentState.HEALTHY]
    if unhealthy:
        console.print(f"[red]error:[/] not healthy: {', '.join(unhealthy)}; run `cloud-factory stack up` first")
        raise typer.Exit(1)
    with console.status("running the order saga…") as status:
        outcome = asyncio.run(run_demo(settings, say=lambda text: (status.update(text), console.print(f"  {text}"))))
    verdict = "[green]signature valid[/]" if outcome.signature.ok else f"[red]signature {outcome.signature}[/]"
    console.print(Panel(Syntax(json.dumps(json.loads(outcome.envelope.model_dump_json(by_alias=True)), indent=2),
                               "json"), title=f"{outcome.envelope.event_type} {outcome.envelope.version} — {verdict}"))
    for name in ("key", "x-cf-key-id", "x-cf-signature", "traceparent", "ce_type", "ce_id"):
        console.print(f"  [bold]{name}[/]: {outcome.headers.get(name, '-')}")
    console.print(f"\nOrder {outcome.order.order_id}: workflow result status={outcome.result.status}, "
                  f"{outcome.notification_rows} notification(s) stored.")
    console.print(f"Inspect the saga in the Temporal Web UI: [link={outcome.ui_url}]{outcome.ui_url}[/link]")
