"""`cloud-factory fallback status | replay`: the spool records wait in while Kafka is unreachable."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Pending records and bytes per spool directory, and lines that failed to replay; exit 1 if any wait."""
    import json

    from core.settings import get_settings
    from messaging.wiring import spool_from

    report = spool_from(get_settings()).status()
    data = {"directory": str(report.directory), "pendingRecords": report.pending_records,
            "pendingBytes": report.pending_bytes, "files": [p.name for p in report.files],
            "failedRecords": report.failed_records, "failedFiles": [p.name for p in report.failed_files]}
    if as_json:
        typer.echo(json.dumps(data))
    else:
        typer.echo(f"spool {data['directory']}: {report.pending_records} pending record(s) "
                   f"({report.pending_bytes} bytes) in {len(report.files)} file(s); "
                   f"{report.failed_records} failed line(s) in {len(report.failed_files)} .failed file(s)")
    if report.pending_records:
        raise typer.Exit(1)


@app.command()
def replay() -> None:
    """Re-publish every spooled record now, in order (workers also do this by themselves)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cloud_factory.cli.errors import require_kafka
    from core.settings import get_settings
    from messaging.wiring import producer_from, spool_from

    settings = get_settings()
    pending = spool_from(settings).status().pending_records
    if not pending:
        typer.echo("spool empty: nothing to replay")
        return
    require_kafka(meanwhile=f"{pending} record(s) stay in the spool")
    producer = producer_from(settings, replay_in_background=False)  # this command does the replay
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=Console(stderr=True), disable=not pending) as progress:
            task = progress.add_task("replay", total=pending)
            report = producer.replay_spool(
                on_progress=lambda so_far: progress.update(task, completed=so_far.replayed + so_far.failed))
    finally:
        producer.close()
    typer.echo(f"replayed {report.replayed} record(s); {report.failed} moved to .failed; "
               f"{'records still waiting (is Kafka up?)' if report.remaining else 'spool empty'}")
    if report.remaining:
        raise typer.Exit(1)
