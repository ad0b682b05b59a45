"""The soak benchmark's figures: printed tables, a JSON and a Markdown copy, and one PNG of latency,
throughput and memory over the run (matplotlib, the `bench` extra, drawn off-screen)."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

__all__ = ["figures", "render", "require_matplotlib", "write_plot"]


def require_matplotlib() -> None:
    """Fail before the run, not after it, when the plot cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit("error: matplotlib is missing; install the bench extra: "
                         ".venv/bin/python -m pip install -e '.[bench]'") from None


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def figures(meta: dict, runs: list, latencies: dict[str, float], rss, reconciliation) -> dict:  # noqa: ANN001
    """Every figure of the run as plain data (what the JSON holds and the tables print)."""
    done = [r for r in runs if r.done_at is not None]
    first = min((r.placed_at for r in runs if r.placed_at is not None), default=0.0)
    last = max((r.done_at for r in done), default=first)
    by_outcome: dict[str, list[float]] = {}
    for run in done:
        if run.order.workflow_id in latencies:
            by_outcome.setdefault(run.outcome, []).append(latencies[run.order.workflow_id])
    every = list(latencies.values())
    buckets = Counter(int(r.done_at // 10) for r in done)
    return {
        **meta,
        "finished": len(done),
        "outcomes": dict(Counter(r.outcome for r in done).most_common()),
        "scenarios": {s: dict(Counter(r.outcome for r in done if r.scenario == s))
                      for s in sorted({r.scenario for r in runs})},
        "elapsed_s": round(last - first, 1),
        "throughput_per_s": round(len(done) / (last - first), 2) if last > first else None,
        "latency_s": {"p50": round(_pct(every, 0.5), 3), "p99": round(_pct(every, 0.99), 3),
                      "max": round(max(every, default=float("nan")), 3),
                      "by_outcome": {o: {"n": len(v), "p50": round(statistics.median(v), 3),
                                         "p99": round(_pct(v, 0.99), 3)}
                                     for o, v in sorted(by_outcome.items())}},
        "rss_mb": {name: {k: round(v, 1) for k, v in s.items()} for name, s in rss.summary().items()},
        "reconciliation": {"mismatches": len(reconciliation.mismatches), "passes": reconciliation.passes,
                           "settled_s": round(reconciliation.settled_s, 1), "events": reconciliation.records,
                           "first": dict(list(reconciliation.mismatches.items())[:10])},
        "series": {
            "latency": [(round(r.done_at, 2), round(latencies[r.order.workflow_id], 3)) for r in done
                        if r.order.workflow_id in latencies],
            "placed": [round(r.placed_at, 2) for r in runs if r.placed_at is not None],
            "throughput_10s": [(b * 10, buckets[b] / 10) for b in range(int(last // 10) + 1)],
            "rss": [(round(t, 1), {k: round(v, 1) for k, v in values.items()}) for t, values in rss.samples],
        },
    }


def render(fig: dict) -> str:
    """The figures as Markdown tables (printed as they are: they read well in a terminal too)."""
    lat = fig["latency_s"]
    lines = [f"## Soak: {fig['orders']} orders, {fig['in_flight']} in flight, workers {fig['workers']}",
             "", f"{fig['started']} · {fig['finished']} finished in {fig['elapsed_s']} s · "
             f"**{fig['throughput_per_s']} orders/s** · created→terminal p50 **{lat['p50']} s**, "
             f"p99 **{lat['p99']} s** (max {lat['max']} s)", "",
             f"Customer cancels: {fig.get('cancels') or 0}; result reads retried after a server error: "
             f"{fig.get('result_retries') or 0}", "",
             "| outcome | orders | p50 s | p99 s |", "|---|---:|---:|---:|"]
    for outcome, count in fig["outcomes"].items():
        o = lat["by_outcome"].get(outcome, {})
        lines.append(f"| {outcome} | {count} | {o.get('p50', '')} | {o.get('p99', '')} |")
    lines += ["", "| scenario | outcomes |", "|---|---|"]
    lines += [f"| {s} | {', '.join(f'{k} {v}' for k, v in c.items())} |" for s, c in fig["scenarios"].items()]
    lines += ["", "| worker process | RSS start MB | peak MB | end MB |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {s['start']} | {s['peak']} | {s['end']} |" for name, s in fig["rss_mb"].items()]
    rec = fig["reconciliation"]
    lines += ["", f"Reconciliation: **{rec['mismatches']} mismatches** ({rec['events']} distinct events "
              f"read; {rec['passes']} pass(es), settled after {rec['settled_s']} s)"]
    lines += [f"- `{wf}`: {'; '.join(problems)}" for wf, problems in rec["first"].items()]
    return "\n".join(lines) + "\n"


def write_plot(fig: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = fig["series"]
    figure, (ax_lat, ax_rate, ax_rss) = plt.subplots(3, 1, figsize=(10, 11), sharex=True)
    if series["latency"]:
        t, lat = zip(*series["latency"], strict=True)
        ax_lat.scatter(t, lat, s=3, alpha=0.3, label="one order")
        bins: dict[int, list[float]] = {}
        for at, value in series["latency"]:
            bins.setdefault(int(at // 10), []).append(value)
        mids = [b * 10 + 5 for b in sorted(bins)]
        for q, style in ((0.5, "-"), (0.99, "--")):
            ax_lat.plot(mids, [_pct(bins[b], q) for b in sorted(bins)], style, color="black",
                        label=f"p{round(q * 100)} per 10 s")
        ax_lat.set_yscale("log")
    ax_lat.set_ylabel("created → terminal (s)")
    ax_lat.set_title(f"soak: {fig['orders']} orders, {fig['in_flight']} in flight ({fig['started']})")
    ax_lat.legend(loc="upper left")
    if series["throughput_10s"]:
        t, rate = zip(*series["throughput_10s"], strict=True)
        ax_rate.step(t, rate, where="post", label="finished")
    placed = Counter(int(at // 10) for at in series["placed"])
    if placed:
        spans = range(max(placed) + 1)
        ax_rate.step([b * 10 for b in spans], [placed[b] / 10 for b in spans], where="post", alpha=0.6,
                     label="placed")
        ax_rate.legend(loc="upper left")
    ax_rate.set_ylabel("orders finished / s (10 s bins)")
    names = sorted({name for _t, values in series["rss"] for name in values})
    for name in names:
        points = [(t, values[name]) for t, values in series["rss"] if name in values]
        ax_rss.plot([p[0] for p in points], [p[1] for p in points], label=name)
    ax_rss.set_ylabel("RSS (MB)")
    ax_rss.set_xlabel("seconds since the first order was placed")
    ax_rss.legend(loc="upper left", fontsize="small", ncol=3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_all(fig: dict, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md"), stem.with_suffix(".png")]
    paths[0].write_text(json.dumps(fig, indent=1, default=str))
    paths[1].write_text(render(fig))
    write_plot(fig, paths[2])
    return paths
