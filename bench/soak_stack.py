"""The soak benchmark's stack: a private one (own state directory, free ports) or the environment's.

A private stack is pointed at through the same `CF_*` variables the developer's and the tests' stacks
use, set in `os.environ` before anything reads the settings, so the worker processes the bench
starts inherit them. Its ports are taken above the ephemeral range (a server's port taken by some
client socket would fail its start), so it collides with no other stack on the machine.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cloud_factory.stack import Stack
from cloud_factory.stack.ports import free_port_block
from core.settings import Settings, get_settings, project_root

__all__ = ["soak_stack"]

# Variables that point a run at servers elsewhere; a private stack must not inherit them.
_ELSEWHERE = ("CF_KAFKA_BOOTSTRAP", "CF_TEMPORAL_ADDRESS", "CF_DATABASE_URL", "CF_SIGNING_KEYS",
              "CF_SIGNING_KEYS_FILE", "CF_FALLBACK_DIR", "CF_HOST", "CF_KAFKA_BROKERS")


def _free_block(size: int, taken: set[int]) -> int:
    """The first of `size` consecutive free loopback ports outside the ephemeral range, noted in `taken`."""
    first = free_port_block(size, avoid=taken)
    taken.update(range(first, first + size))
    return first


def _private_env(state_dir: Path) -> dict[str, str]:
    taken: set[int] = set()
    kafka = _free_block(2, taken)
    temporal = _free_block(2, taken)
    return {
        "CF_STATE_DIR": str(state_dir),
        "CF_ENV": "bench",
        "CF_KAFKA_PORT": str(kafka),
        "CF_KAFKA_CONTROLLER_PORT": str(kafka + 1),
        "CF_TEMPORAL_PORT": str(temporal),
        "CF_TEMPORAL_UI_PORT": str(temporal + 1),
        "CF_PG_PORT": str(_free_block(1, taken)),
    }


def require_up(settings: Settings, hint: str = "run `cloud-factory stack up`") -> None:
    """One `error:` line (exit 1) naming what is down, before a bench starts anything on the stack."""
    down = [s.name for s in Stack(settings).status() if s.state.name != "HEALTHY"]
    if down:
        raise SystemExit(f"error: the stack at {settings.state_dir} is not up ({', '.join(down)}); {hint}")


@contextmanager
def soak_stack(private: bool, *, keep_state: bool = False, say=print) -> Iterator[Settings]:  # noqa: ANN001
    """The settings of the stack to soak: with `private`, a fresh stack under `.cloud-factory-bench/`
    started here and stopped (its state removed unless `keep_state`) on the way out; else the stack
    the environment's `CF_*` settings point at, which must be up."""
    if not private:
        settings = get_settings()
        require_up(settings, "run `cloud-factory stack up` or drop --env-stack")
        yield settings
        return
    state_dir = project_root() / ".cloud-factory-bench" / f"soak-{os.getpid()}"
    for name in _ELSEWHERE:
        os.environ.pop(name, None)
    os.environ.update(_private_env(state_dir))
    get_settings.cache_clear()
    settings = get_settings()
    stack = Stack(settings)
    say(f"starting a private stack in {state_dir} (Kafka :{settings.kafka_port}, "
        f"Temporal :{settings.temporal_port}, PostgreSQL :{settings.pg_port})")
    try:
        stack.up()
        yield settings
    finally:
        say("stopping the private stack")
        stack.down()
        if not keep_state:
            shutil.rmtree(state_dir, ignore_errors=True)
