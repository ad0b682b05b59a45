"""What a test run must leave exactly as it found it: the developer's own stack and its data.

The test session runs on a stack of its own (tests/conftest.py). Before it starts, and again when it
ends, this takes a snapshot of the developer's stack as their default settings describe it: the
files of its state directory that only the platform writes (spool, heartbeats, keys, pid files and
whether those processes live), and — when its servers are up — every topic with its record count and
every table with its row count. Equal snapshots prove the run touched none of it; servers that are
down are recorded as down, so on a machine with no developer stack the proof is that nothing appeared.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import Settings

__all__ = ["Snapshot", "snapshot"]

# What the servers themselves rewrite while they run (their data and logs) is not the run's doing.
_PLATFORM_FILES = ("fallback", "workers", "run", "signing-keys")


@dataclass(frozen=True)
class Snapshot:
    state_dir_exists: bool
    files: dict[str, str] = field(default_factory=dict)  # relative path → sha256 of its content
    processes: dict[str, bool] = field(default_factory=dict)  # pid file → is that process alive
    topics: dict[str, int] | None = None  # topic → records (sum of high watermarks); None: Kafka down
    tables: dict[str, int] | None = None  # schema.table → rows; None: PostgreSQL down

    def differences(self, later: Snapshot) -> list[str]:
        """Human lines naming what changed from this snapshot to `later` (empty: nothing did)."""
        lines = []
        for name in ("state_dir_exists", "files", "processes", "topics", "tables"):
            before, after = getattr(self, name), getattr(later, name)
            if before == after:
                continue
            if isinstance(before, dict) and isinstance(after, dict):
                changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
                lines.append(f"{name}: {', '.join(changed[:20])}{' …' if len(changed) > 20 else ''}")
            else:
                lines.append(f"{name}: {before!r} → {after!r}")
        return lines


def snapshot(settings: Settings) -> Snapshot:
    root = settings.state_dir
    if not root.exists():
        return Snapshot(False, topics=_topics(settings), tables=_tables(settings))
    files: dict[str, str] = {}
    processes: dict[str, bool] = {}
    for name in _PLATFORM_FILES:
        base = root / name
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in paths:
            relative = str(path.relative_to(root))
            files[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
            if name == "run" and path.suffix == ".pid":
                processes[relative] = _alive(path)
    # Heartbeats are rewritten by the developer's own running workers: their names count, not content.
    files = {k: ("beat" if k.startswith("workers/") else v) for k, v in files.items()}
    return Snapshot(True, files, processes, _topics(settings), _tables(settings))


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
    except (ValueError, ProcessLookupError, PermissionError):
        return False
    return True


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _topics(settings: Settings) -> dict[str, int] | None:
    if settings.kafka_bootstrap is None and not _listening(settings.host, settings.kafka_port):
        return None
    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "developer-state-probe",
                      "log_level": 0})
    try:
        metadata = probe.list_topics(timeout=10)
        counts = {}
        for name, topic in sorted(metadata.topics.items()):
            if name.startswith("__"):
                continue  # the broker's own (offsets, transactions)
            counts[name] = sum(probe.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
                               for p in topic.partitions)
        return counts
    finally:
        probe.close()


def _tables(settings: Settings) -> dict[str, int] | None:
    if settings.database_url is None and not _listening(settings.host, settings.pg_port):
        return None
    import psycopg

    with psycopg.connect(settings.libpq_dsn, connect_timeout=5) as conn:
        names = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2").fetchall()
        return {f"{schema}.{table}": conn.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]
                for schema, table in names}
