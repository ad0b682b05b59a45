"""What the Identity, Product and Support command lines share: build the service's commands, run one
(its rows and outbox events commit together), then try to get the events onto Kafka."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import typer

__all__ = ["WAIT", "OutboxCommandRunner"]

T = TypeVar("T")
C = TypeVar("C")

WAIT = typer.Option(False, "--wait", help="Return once the event is on Kafka (relays it if no worker does).")


class OutboxCommandRunner(Generic[C]):
    """Runs commands of `services.<service>.commands.<class_name>`; service modules load lazily so
    `cloud-factory --help` stays fast."""

    def __init__(self, service: str, class_name: str) -> None:
        self.service = service
        self.class_name = class_name

    def commands(self) -> C:
        from core.settings import get_settings
        from services.common.commands import build_commands
        from services.common.outbox_services import service_tables

        commands_module = importlib.import_module(f"services.{self.service}.commands")
        tables = service_tables(self.service)
        commands_class: Any = getattr(commands_module, self.class_name)
        return build_commands(get_settings(), self.service, tables.metadata, tables.outbox, commands_class)

    def __call__(self, wait: bool, action: Callable[[C], T]) -> T:
        from core.settings import get_settings
        from core.tracing import configure_tracing

        # The command's span opens its events' trace; with `CF_TRACE_EXPORTER` set it is exported too.
        configure_tracing(f"{self.service}-cli")
        settings = get_settings()
        commands: Any = self.commands()
        try:
            result = action(commands)
        except (ValueError, LookupError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        from messaging.outbox.delivery import deliver, explain

        report = deliver(settings, commands.engine, commands.emit, wait=wait)
        message = explain(report, self.service, wait=wait)
        if message:
            typer.echo(message, err=True)
            if wait:
                raise typer.Exit(1)
        return result
