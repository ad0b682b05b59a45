"""`cloud-factory worker KIND --processes N`: N copies of one worker process, kept running.

Why processes: the consumers of one process share one interpreter, so a kind's throughput stops
growing at about one core however many threads it runs; N processes of the kind join the same
consumer groups (Kafka splits the partitions among them) and the same task queue (Temporal splits
the sagas). Each child is a complete `cloud-factory worker KIND` process with its own heartbeat,
so `stack status` lists every one.

The supervisor does three things and nothing else:
- keeps N children: a child that exits when not asked to is started again after a pause (1 s,
  doubling up to 30 s while it keeps dying young; a child that ran a minute starts over at 1 s);
  five exits in a row each within 10 s of its start mean it cannot run here: the others are
  stopped and the supervisor exits 1 with one line;
- stops them: SIGTERM or SIGINT is passed on to every child as SIGTERM (each finishes the work in
  hand and commits); the supervisor exits when all have, 0 when all exited cleanly;
- takes them along: a child asks the kernel for SIGTERM when its supervisor dies (Linux
  `PR_SET_PDEATHSIG`, see `follow_supervisor`), so a supervisor killed with SIGKILL leaves no
  orphan consuming.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["SUPERVISOR_PID_ENV", "WORKER_PROCESS_ENV", "RestartPolicy", "Supervisor", "follow_supervisor",
           "replicas_per_process"]

log = logging.getLogger(__name__)

SUPERVISOR_PID_ENV = "CF_SUPERVISOR_PID"  # set in each child: the pid whose death stops it
WORKER_PROCESS_ENV = "CF_WORKER_PROCESS"  # set in each child: "2/4", which of the N it is
_PR_SET_PDEATHSIG = 1
_TICK_S = 0.2


@dataclass(frozen=True)
class RestartPolicy:
    """How a child that exits unasked is started again, and when the supervisor gives up."""

    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    young_s: float = 10.0  # an exit this soon after the start counts towards giving up
    settled_s: float = 60.0  # a child that ran this long starts over at the first delay
    give_up_after: int = 5  # young exits in a row

    def delay(self, young_exits: int) -> float:
        return min(self.max_delay_s, self.first_delay_s * 2 ** max(0, young_exits - 1))


@dataclass
class _Child:
    index: int  # 0-based; shown 1-based
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    young_exits: int = 0
    start_at: float = 0.0  # when a stopped child is due to start again
    returncode: int | None = None  # its last exit, once it exited

    @property
    def running(self) -> bool:
        return self.process is not None and self.returncode is None


@dataclass
class Supervisor:
    """Runs `command` `count` times; child i gets `env` plus `CF_WORKER_PROCESS=i/count` and the
    supervisor's pid. `run()` blocks until stopped and returns the exit code."""

    command: Sequence[str]
    count: int
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    name: str = "worker"

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"processes must be at least 1, not {self.count}")
        self._stop = threading.Event()
        self._children = [_Child(index) for index in range(self.count)]

    def _label(self, child: _Child) -> str:
        return f"{self.name} process {child.index + 1}/{self.count}"

    def _start(self, child: _Child) -> None:
        env = {**self.env, WORKER_PROCESS_ENV: f"{child.index + 1}/{self.count}",
               SUPERVISOR_PID_ENV: str(os.getpid())}
        child.process = subprocess.Popen(list(self.command), env=env)
        child.started_at = time.monotonic()
        child.returncode = None
        log.info("started %s (pid %d)", self._label(child), child.process.pid)

    def request_stop(self) -> None:
        self._stop.set()

    def pids(self) -> list[int]:
        """The running children's pids."""
        return [child.process.pid for child in self._children if child.running and child.process]

    def _exited(self, child: _Child, code: int, stopping: bool) -> bool:
        """Note an exit; False when the child cannot run here (the supervisor gives up)."""
        child.returncode = code
        if stopping:
            log.info("%s (pid %d) stopped, exit code %d", self._label(child), child.process.pid, code)
            return True
        lived = time.monotonic() - child.started_at
        if lived < self.policy.young_s:
            child.young_exits += 1
        elif lived >= self.policy.settled_s:
            child.young_exits = 0
        if child.young_exits >= self.policy.give_up_after:
            log.error("%s exited %d times in a row within %.0f s of its start (last exit code %d); "
                      "stopping the others", self._label(child), child.young_exits, self.policy.young_s, code)
            return False
        delay = self.policy.delay(child.young_exits)
        child.start_at = time.monotonic() + delay
        log.warning("%s (pid %d) exited unasked, exit code %d; starting it again in %.0f s",
                    self._label(child), child.process.pid, code, delay)
        return True

    def _signal_running(self, signum: int) -> None:
        for child in self._children:
            if child.running and child.process is not None:
                try:
                    child.process.send_signal(signum)
                except ProcessLookupError:
                    pass

    def run(self) -> int:
        previous = {sig: signal.signal(sig, lambda *_: self.request_stop())
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        gave_up = False
        try:
            for child in self._children:
                self._start(child)
            stopping = False
            while True:
                if self._stop.is_set() and not stopping:
                    stopping = True
                    log.info("stop requested; stopping %d %s process(es)", len(self.pids()), self.name)
                    self._signal_running(signal.SIGTERM)
                for child in self._children:
                    if child.running and child.process is not None:
                        code = child.process.poll()
                        if code is not None and not self._exited(child, code, stopping) and not gave_up:
                            gave_up = True
                            self._stop.set()
                    elif not stopping and child.returncode is not None and time.monotonic() >= child.start_at:
                        self._start(child)
                if stopping and not any(child.running for child in self._children):
                    break
                time.sleep(_TICK_S)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._signal_running(signal.SIGTERM)  # only when leaving by an exception: none run otherwise
        if gave_up:
            return 1
        return 0 if all(child.returncode in (0, None) for child in self._children) else 1


def replicas_per_process(partitions: int, processes: int) -> int:
    """Consumers per saga-path kind in each of `processes`: together one per partition."""
    return max(1, math.ceil(partitions / processes))


def follow_supervisor(environ: Mapping[str, str] = os.environ) -> None:
    """In a child (its environment names the supervisor): ask for SIGTERM when the supervisor dies,
    and stop at once if it already has. Elsewhere than Linux the request is not available and is
    skipped: such a child outlives a supervisor killed hard."""
    raw = environ.get(SUPERVISOR_PID_ENV)
    if not raw or not raw.isdigit():
        return
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != int(raw):  # the supervisor died before the request took hold
        raise SystemExit(f"the supervisor (pid {raw}) is gone; not starting")
