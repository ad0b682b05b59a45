"""`worker KIND --processes N`: the supervisor keeps N real child processes, stops them, and takes
them along when it is killed (its children's side: `follow_supervisor`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloud_factory.stack._process import pid_alive
from workers.supervisor import RestartPolicy, Supervisor, replicas_per_process

ROOT = Path(__file__).resolve().parents[2]


def _supervisor(directory: Path, count: int, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.support.supervised", "supervise", str(directory),
                             str(count), mode], cwd=ROOT, stderr=subprocess.PIPE, text=True)


def _marks(directory: Path, what: str) -> set[int]:
    return {int(path.name.split("-", 1)[1]) for path in directory.glob(f"{what}-*")}


def _until(condition, what: str, timeout: float = 20.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_sigterm_stops_every_child_gracefully_and_exits_0(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path, 3, "serve")
    _until(lambda: len(_marks(tmp_path, "started")) == 3, "three children")
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(20) == 0, supervisor.stderr.read()
    assert _marks(tmp_path, "stopped") == _marks(tmp_path, "started")  # each finished its own stop


def test_a_child_killed_is_started_again(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path, 2, "serve")
    try:
        _until(lambda: len(_marks(tmp_path, "started")) == 2, "two children")
        first = _marks(tmp_path, "started")
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        _until(lambda: len(_marks(tmp_path, "started")) == 3, "the killed child started again")
        replacement = _marks(tmp_path, "started") - first
        assert len(replacement) == 1 and all(pid_alive(pid) for pid in (first - {victim}) | replacement)
    finally:
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(20)
    log = supervisor.stderr.read()
    assert code == 0, log
    assert f"(pid {victim}) exited unasked, exit code -9; starting it again" in log
    assert _marks(tmp_path, "stopped") == _marks(tmp_path, "started") - {victim}


def test_children_that_cannot_run_make_it_give_up_with_exit_1(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path, 2, "die")
    code = supervisor.wait(30)
    log = supervisor.stderr.read()
    assert code == 1, log
    assert "exited 3 times in a row within 2 s of its start (last exit code 3)" in log
    # Three starts of the child that gave up; the other one was stopped before a fourth of its own.
    assert 4 <= len(_marks(tmp_path, "started")) <= 6
    assert "Traceback" not in log


def test_a_supervisor_killed_hard_takes_its_children_along(tmp_path: Path) -> None:
    supervisor = _supervisor(tmp_path, 2, "serve")
    _until(lambda: len(_marks(tmp_path, "started")) == 2, "two children")
    children = _marks(tmp_path, "started")
    supervisor.kill()
    supervisor.wait(10)
    _until(lambda: not any(pid_alive(pid) for pid in children), "the orphans to stop", timeout=10)
    assert _marks(tmp_path, "stopped") == children  # they stopped by SIGTERM, gracefully


def test_a_child_whose_supervisor_is_gone_does_not_start(tmp_path: Path) -> None:
    """The supervisor died between starting a child and the child's request: the child stops."""
    command = [sys.executable, "-m", "tests.support.supervised", "child", str(tmp_path), "serve"]
    child = subprocess.run(command, cwd=ROOT, env={**os.environ, "CF_SUPERVISOR_PID": "1"},
                           capture_output=True, text=True, timeout=20)
    assert child.returncode == 1
    assert child.stderr.strip().splitlines()[-1] == "the supervisor (pid 1) is gone; not starting"
    assert _marks(tmp_path, "started") == set()


@pytest.mark.parametrize(("partitions", "processes", "each"), [(3, 1, 3), (3, 2, 2), (6, 2, 3), (6, 4, 2),
                                                              (2, 8, 1)])
def test_saga_path_consumers_split_the_partitions(partitions: int, processes: int, each: int) -> None:
    assert replicas_per_process(partitions, processes) == each


def test_restart_pauses_double_up_to_the_ceiling() -> None:
    policy = RestartPolicy(first_delay_s=1, max_delay_s=30)
    assert [policy.delay(n) for n in range(8)] == [1, 1, 2, 4, 8, 16, 30, 30]


def test_no_processes_is_refused() -> None:
    with pytest.raises(ValueError, match="processes must be at least 1, not 0"):
        Supervisor(["true"], 0)


@pytest.mark.parametrize(("argv", "line"), [
    (["worker", "api", "--processes", "2"],
     "error: Invalid value for --processes: not for `worker api` (one process listens on a port); run one "
     "API process per port behind a load balancer (see `cloud-factory worker --help`)"),
    (["worker", "billing", "--processes", "0"],
     "error: Invalid value for '--processes': Input should be greater than or equal to 1 "
     "(see `cloud-factory worker --help`)"),
])
def test_a_wrong_processes_option_is_one_line(argv: list[str], line: str) -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "cloud-factory"), *argv], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert (done.returncode, done.stderr.strip()) == (2, line)
