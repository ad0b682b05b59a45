"""Free loopback ports for a private stack's servers (tests, benchmarks), which are started,
stopped and started again.

A port the kernel hands out for `bind(0)` comes from the ephemeral range, the same range outgoing
connections draw their local ports from: after such a server is killed, one of the many client
sockets around may take its port, and the restart fails with "Address already in use". So servers
get ports outside the ephemeral range, checked free when chosen.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

__all__ = ["free_port", "free_port_block"]


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(ports: range) -> bool:
    sockets = []
    try:
        for port in ports:
            sock = socket.socket()
            sockets.append(sock)
            sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()


def free_port_block(size: int = 1, *, avoid: set[int] | frozenset[int] = frozenset()) -> int:
    """The first of `size` consecutive free ports outside the ephemeral range (none in `avoid`)."""
    low, high = _ephemeral_range()
    candidates = [(1024, low), (high + 1, 65536)]
    spans = [(start, end) for start, end in candidates if end - start > size + 100]
    for _ in range(500):
        start, end = random.choice(spans)
        first = random.randrange(start, end - size)
        ports = range(first, first + size)
        if not avoid.intersection(ports) and _bindable(ports):
            return first
    raise AssertionError(f"no {size} consecutive free ports found on loopback outside {low}-{high}")


def free_port(*, avoid: set[int] | frozenset[int] = frozenset()) -> int:
    return free_port_block(1, avoid=avoid)
