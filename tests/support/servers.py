"""Starting a server of a test's own and waiting for it, alike for every kind of server."""

from __future__ import annotations

import time

from cloud_factory.stack._component import Component
from cloud_factory.stack._process import pid_alive

__all__ = ["launch_and_wait"]


def launch_and_wait(component: Component, *, timeout: float, what: str) -> None:
    """Launch (or relaunch) `component` and wait until it answers its protocol; fail naming `what`
    and its log when its process dies first or it does not answer within `timeout` seconds."""
    component.launch()
    deadline = time.monotonic() + timeout
    while not component.probe():
        pid = component.pid()
        assert pid is not None and pid_alive(pid), f"{what} died; see {component.log_path}"
        assert time.monotonic() < deadline, f"{what} not up after {timeout:.0f}s; see {component.log_path}"
        time.sleep(0.3)
