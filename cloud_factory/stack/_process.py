"""Process plumbing shared by the stack components: pid files, ports, spawning and stopping.

A component is "ours" only when its pid file names a live process; `down` stops nothing else.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "StackError",
    "port_open",
    "pid_alive",
    "children_of",
    "read_pid",
    "spawn",
    "terminate",
    "wait_until",
    "tail",
]


class StackError(RuntimeError):
    """A component cannot be started or stopped; the message is one line and names the log file."""


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited child not yet reaped) still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def _parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def children_of(pid: int) -> set[int]:
    """The pids whose parent is `pid` now (read from /proc: the supervisor's children, say)."""
    pids = (int(name) for name in os.listdir("/proc") if name.isdigit())
    return {child for child in pids if _parent_pid(child) == pid}


def read_pid(pid_file: Path) -> int | None:
    """The live pid recorded in pid_file, or None (a stale file is removed)."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if pid_alive(pid):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def spawn(argv: Sequence[str], *, log_file: Path, pid_file: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start argv detached from our session (it outlives the CLI), output appended to log_file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc


def terminate(pid: int, *, grace_seconds: float = 30.0) -> None:
    """SIGTERM the process group, escalate to SIGKILL after the grace period."""
    for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        if wait_until(lambda: not pid_alive(pid), timeout=wait, interval=0.2):
            return


def wait_until(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int = 1) -> str:
    """Last non-empty lines of a log, for one-line error messages."""
    try:
        content = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in content[-lines:])
