"""The `cloud-factory` command line: one Typer app per concept, mounted here.

Each sub-app lives in its own module (`stack`, `events`, …) so that a concept's commands sit next to
nothing else; this module only assembles them.
"""

from __future__ import annotations

import typer

from cloud_factory.cli import (
    demo,
    dlq,
    events,
    fallback,
    health,
    identity,
    incident,
    order,
    outbox,
    product,
    replay,
    stack,
    support,
    worker,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="cloud-factory",
    help="Cloud Factory: signed domain events on Kafka, order sagas on Temporal. "
    "Errors are one line; add --debug anywhere (or set CF_DEBUG=1) for the traceback.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack.app, name="stack")
app.add_typer(events.app, name="events")
app.command("worker", help=worker.HELP)(worker.worker)
app.add_typer(order.app, name="order", help="Place, cancel and inspect orders (the saga).")
app.add_typer(incident.app, name="incident", help="Sagas whose compensation failed: they wait for a person.")
app.add_typer(dlq.app, name="dlq", help="Inspect and handle dead-lettered records.")
app.add_typer(fallback.app, name="fallback", help="The local spool used while Kafka is unreachable.")
app.add_typer(identity.app, name="identity")
app.add_typer(product.app, name="product")
app.add_typer(support.app, name="support")
app.add_typer(outbox.app, name="outbox")
app.command(name="replay")(replay.command)
app.command("health", help=health.HELP)(health.health)
app.add_typer(demo.app, name="demo", help="The main job: about 20 orders across 3 tenants, some failing, "
                                          "end to end on the real stack.")


def main() -> None:
    """Run the CLI in-process (the console script is `cloud_factory.entry.main`): every command behind
    the one-line error boundary (`--debug` anywhere on the line, or CF_DEBUG=1, shows tracebacks)."""
    from cloud_factory.cli.errors import run

    run(app)
