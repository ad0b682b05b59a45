"""`cloud-factory replay`: replay workflow histories against this build's workflow code before deploying it.

A table, one row per history: workflow id, outcome, replay result (ok / NON-DETERMINISTIC / error)
and the first mismatch; exit 1 unless every history replayed. The machinery is `workers.replay`;
temporalio is imported only when the command runs, so `cloud-factory --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from workers.replay import ReplayRow

__all__ = ["command"]


class _Progress:
    """Progress on stderr: a live bar on a terminal, a plain line every 25 histories elsewhere (CI logs)."""

    EVERY = 25

    def __init__(self, total: int | None, what: str) -> None:
        self.total, self.what, self.done = total, what, 0
        self._bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                 TextColumn("{task.description}"), console=Console(stderr=True),
                                 transient=True)
            self._task = self._bar.add_task("", total=total)
            self._bar.start()

    def step(self, label: str) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, description=label)
        elif self.done % self.EVERY == 0:
            of = f"/{self.total}" if self.total is not None else ""
            print(f"{self.what} {self.done}{of}…", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _table(rows: list[ReplayRow], *, files: bool) -> str:
    """Plain aligned columns (greppable, never wrapped); the mismatch last, as long as it is."""
    header = (["history"] if files else []) + ["workflow id", "outcome", "replay", "first mismatch"]
    lines = [header] + [
        ([Path(row.source).name] if files else []) + [row.workflow_id, row.outcome, row.verdict.value,
                                                      row.mismatch]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        ("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) + "  " + line[-1])
        .rstrip()
        for line in lines
    )


async def _from_server(query: str, limit: int, save: Path | None) -> list[ReplayRow]:
    from temporalio.service import RPCError, RPCStatusCode

    from core.settings import get_settings
    from core.temporal import connect_client
    from workers.replay import replay, server_histories

    client = await connect_client(get_settings())
    try:
        total = min((await client.count_workflows(query)).count, limit)
    except RPCError as exc:
        if exc.status is RPCStatusCode.INVALID_ARGUMENT:
            raise ValueError(f"Temporal refused the query {query!r}: {exc.message}") from None
        raise
    progress = _Progress(total, "fetching and replaying")
    rows: list[ReplayRow] = []
    try:
        async for row in replay(server_histories(client, query, limit=limit, save=save)):
            rows.append(row)
            progress.step(row.workflow_id)
    finally:
        progress.close()
    return rows


async def _from_files(directory: Path) -> list[ReplayRow]:
    from workers.replay import file_histories, history_files, replay

    paths = history_files(directory)
    progress = _Progress(len(paths), "replaying")
    rows: list[ReplayRow] = []
    try:
        async for row in replay(file_histories(paths)):
            rows.append(row)
            progress.step(row.workflow_id)
    finally:
        progress.close()
    return rows


def command(
    directory: Path | None = typer.Option(
        None, "--dir", help="Replay every *.json history in this directory (e.g. tests/histories)."),
    query: str | None = typer.Option(
        None, "--query", help="Visibility query for the histories to fetch from Temporal. Default: the "
        "replayed workflow types, running or closed in the last 7 days."),
    limit: int = typer.Option(200, "--limit", min=1, help="Fetch at most this many histories (--query)."),
    save: Path | None = typer.Option(
        None, "--save", help="Also write each fetched history to DIR/<workflow id>.json (a test fixture).",
        file_okay=False),
) -> None:
    """Replay histories against this build's workflow code; exit 1 on any non-determinism or error.

    Without --dir, the histories are fetched from the Temporal server of the settings (CF_TEMPORAL_*).
    """
    import asyncio

    if directory is not None and (query is not None or save is not None):
        raise typer.BadParameter("--dir replays files; --query and --save fetch from the server: pick one")
    if directory is not None:
        rows = asyncio.run(_from_files(directory))
    else:
        from workers.replay import default_query

        if save is not None:
            save.mkdir(parents=True, exist_ok=True)
        query = query or default_query()
        rows = asyncio.run(_from_server(query, limit, save))
        if not rows:
            typer.echo(f"no workflow matches {query}")
            return
    typer.echo(_table(rows, files=directory is not None))
    failed = [row for row in rows if not row.ok]
    counts = {verdict: sum(row.verdict.value == verdict for row in rows)
              for verdict in ("ok", "NON-DETERMINISTIC", "error")}
    typer.echo(f"{len(rows)} histories: " + ", ".join(f"{n} {verdict}" for verdict, n in counts.items() if n)
               + (f"; saved to {save}" if save is not None else ""))
    if failed:
        raise typer.Exit(1)
