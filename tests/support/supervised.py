"""Real processes for the supervisor's tests: a supervisor of N small children, and those children.

    python -m tests.support.supervised supervise DIR N MODE   # a Supervisor of N `child DIR MODE`
    python -m tests.support.supervised child DIR MODE

A child notes its life in DIR: `started-<pid>` on start, `stopped-<pid>` when SIGTERM stopped it.
Modes: `serve` runs until SIGTERM; `die` exits 3 at once. The supervisor's policy is quick (pauses of
50 ms, three young exits give up) so a test sees restarts and giving up within seconds.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

from workers.supervisor import RestartPolicy, Supervisor, follow_supervisor

QUICK = RestartPolicy(first_delay_s=0.05, max_delay_s=0.2, young_s=2.0, settled_s=3.0, give_up_after=3)


def _child(directory: Path, mode: str) -> None:
    follow_supervisor()
    (directory / f"started-{os.getpid()}").touch()
    if mode == "die":
        raise SystemExit(3)
    stopped = False

    def stop(*_: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    while not stopped:
        time.sleep(0.05)
    (directory / f"stopped-{os.getpid()}").touch()


def _supervise(directory: Path, count: int, mode: str) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    command = [sys.executable, "-m", "tests.support.supervised", "child", str(directory), mode]
    return Supervisor(command, count, dict(os.environ), QUICK).run()


if __name__ == "__main__":
    role, directory = sys.argv[1], Path(sys.argv[2])
    if role == "child":
        _child(directory, sys.argv[3])
    else:
        sys.exit(_supervise(directory, int(sys.argv[3]), sys.argv[4]))
