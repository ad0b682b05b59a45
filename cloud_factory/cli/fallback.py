"""`cloud-factory fallback status | replay`: the spool records wait in while Kafka is unreachable."""

from __future__ import annotations

import json

import typer

from cloud_factory.settings import get_settings

app = typer.Typer(no_args_is_help=True)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Pending records and bytes per spool directory, and lines that failed to replay; exit 1 if any wait."""
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
    from messaging.wiring import producer_from

    producer = producer_from(get_settings())
    try:
        report = producer.replay_spool()
    finally:
        producer.close()
    typer.echo(f"replayed {report.replayed} record(s); {report.failed} moved to .failed; "
               f"{'records still waiting (is Kafka up?)' if report.remaining else 'spool empty'}")
    if report.remaining:
        raise typer.Exit(1)
