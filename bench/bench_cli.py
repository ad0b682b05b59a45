"""CLI start-up benchmark: how long `cloud-factory --help` and `order show --help` take to start,
as a ratio of the bare interpreter (`python -c pass`) in the same run. The goal (issue 12) is at most
10x; the figure depends on what the CLI imports before it can print help.

    .venv/bin/python bench/bench_cli.py [--repeats 7]

Each command runs `--repeats` times after one warm-up run (file cache); the median is reported, and
the heaviest imports of `cloud_factory.cli` (`python -X importtime`) are listed so a regression can
be traced to its module.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "cloud-factory --help": [str(BIN / "cloud-factory"), "--help"],
    "cloud-factory order show --help": [str(BIN / "cloud-factory"), "order", "show", "--help"],
}


def _median_s(command: list[str], repeats: int) -> float:
    subprocess.run(command, capture_output=True, check=True)  # warm-up: file cache, .pyc files
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _heaviest_imports(count: int = 8) -> list[tuple[int, str]]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import cloud_factory.cli"],
                          capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)", line)
        if match and len(match.group(2)) <= 3:  # top-level and first-level imports only
            rows.append((int(match.group(1)), match.group(3)))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    baseline = None
    print(f"{'command':<34} {'median':>9} {'ratio':>8}")
    for name, command in COMMANDS.items():
        seconds = _median_s(command, args.repeats)
        baseline = baseline or seconds
        print(f"{name:<34} {seconds * 1000:>7.0f} ms {seconds / baseline:>7.1f}x")
    print("\nheaviest imports of cloud_factory.cli (cumulative):")
    for micros, module in _heaviest_imports():
        print(f"  {micros / 1000:>8.0f} ms  {module}")


if __name__ == "__main__":
    main()
