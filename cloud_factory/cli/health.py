"""`cloud-factory health`: exit 0 while a worker process of this state directory is alive and well.

A container has no `stack status` to read, so its healthcheck runs this. It reads the heartbeats the
workers (and `dlq run`) write under `<state dir>/workers/`: healthy is a beat younger than
`STALE_AFTER_S` from a process that is still there, with every worker thread alive and no partition
stuck on one offset. Parked records alone do not fail it: they wait for an operator
(`dlq parked`), the process itself is fine.
"""

from __future__ import annotations

import time

import typer

HELP = "Exit 0 while a worker of this state directory beats healthy (a container's healthcheck)."


def health(
    kind: str = typer.Option("", "--kind", help="Only a worker running this kind (saga, api, dlq, …)."),
) -> None:
    """One line saying which worker is healthy, or why none is (then exit 1)."""
    from core.settings import get_settings
    from workers.heartbeat import read_heartbeats

    state_dir = get_settings().state_dir
    beats = [b for b in read_heartbeats(state_dir) if not kind or kind in b.kinds]
    what = f"{kind} worker" if kind else "worker"
    if not beats:
        typer.echo(f"unhealthy: no {what} has written a heartbeat under {state_dir / 'workers'}", err=True)
        raise typer.Exit(1)
    now = time.time()
    reasons = []
    for beat in beats:
        name = f"pid {beat.pid} ({','.join(beat.kinds)})"
        if not beat.alive:
            reasons.append(f"{name}: last beat {now - beat.beat_at:.0f}s ago or the process is gone")
        elif not beat.healthy:
            reasons.append(f"{name}: a worker thread died")
        elif beat.stuck:
            reasons.append(f"{name}: stuck on " + ", ".join(str(s) for s in beat.stuck))
        else:
            parked = f", {beat.parked} parked (see `cloud-factory dlq parked`)" if beat.parked else ""
            typer.echo(f"healthy: {name}, last beat {now - beat.beat_at:.0f}s ago{parked}")
            return
    typer.echo("unhealthy: " + "; ".join(reasons), err=True)
    raise typer.Exit(1)
