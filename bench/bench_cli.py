"""CLI start-up benchmark: how long `cloud-factory --help`, `order show --help` and `dlq list --help`
take to start, as a ratio of the bare interpreter (`python -c pass`) in the same run. The goal
(issue 12) is at most 10x; the figure depends on what the CLI imports before it can print help.

    .venv/bin/python bench/bench_cli.py [--repeats 15]

Each command runs once as a warm-up (file cache, .pyc files), then the commands take turns
`--repeats` times, so a busy machine slows all of them alike; the median and the fastest run are
reported, each with its ratio to the bare interpreter's. Two floors show what no CLI module can
remove: importing Typer, and Typer plus the pydantic coercion it builds for a sub-command's options.
Then the heaviest imports of `cloud-factory order show --help` (`python -X importtime`) are listed,
so a regression can be traced to its module.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
CLI = str(BIN / "cloud-factory")
BASELINE = "python -c pass"
COMMANDS = {
    BASELINE: [sys.executable, "-c", "pass"],
    "floor: import typer": [sys.executable, "-c", "import typer"],
    "floor: typer + pydantic coercion": [
        sys.executable, "-c", "import typer, typer._adapters; typer._adapters.try_build_adapter(bool, "
                              "typer.models.OptionInfo())"],
    "cloud-factory --help": [CLI, "--help"],
    "cloud-factory order show --help": [CLI, "order", "show", "--help"],
    "cloud-factory dlq list --help": [CLI, "dlq", "list", "--help"],
}
#: What the console script sets before Typer is imported (cloud_factory/entry.py); the floors get it too.
ENV = {**os.environ, "TYPER_USE_RICH": "0"}


def _timings(repeats: int) -> dict[str, list[float]]:
    for command in COMMANDS.values():  # warm-up: file cache, .pyc files
        subprocess.run(command, capture_output=True, check=True, env=ENV)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(repeats):
        for name, command in COMMANDS.items():
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True, env=ENV)
            times[name].append(time.perf_counter() - started)
    return times


_IMPORTTIME_PROBE = """
import sys
sys.argv = ["cloud-factory", "order", "show", "--help"]
from cloud_factory.entry import main
try:
    main()
except SystemExit:
    pass
"""


def _heaviest_imports(count: int = 10) -> list[tuple[int, str]]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", _IMPORTTIME_PROBE],
                          capture_output=True, text=True, check=True, env=ENV)
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)", line)
        if match and len(match.group(2)) <= 3:  # top-level and first-level imports only
            rows.append((int(match.group(1)), match.group(3)))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    times = _timings(args.repeats)
    base_median, base_min = statistics.median(times[BASELINE]), min(times[BASELINE])
    print(f"{'command':<34} {'median':>9} {'ratio':>7} {'fastest':>10} {'ratio':>7}")
    for name, runs in times.items():
        median, fastest = statistics.median(runs), min(runs)
        print(f"{name:<34} {median * 1000:>6.0f} ms {median / base_median:>6.1f}x "
              f"{fastest * 1000:>7.0f} ms {fastest / base_min:>6.1f}x")
    print("\nheaviest imports of `cloud-factory order show --help` (cumulative):")
    for micros, module in _heaviest_imports():
        print(f"  {micros / 1000:>8.0f} ms  {module}")


if __name__ == "__main__":
    main()
