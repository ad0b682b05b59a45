"""`cloud-factory events …`: the event catalog, schemas and signing tools."""

from __future__ import annotations

import typer

app = typer.Typer(help="The event contract: catalog, JSON Schemas, AsyncAPI, sign/verify.", no_args_is_help=True)
