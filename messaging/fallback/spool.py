"""The file fallback: records that could not reach Kafka wait in `<dir>/YYYY-MM-DD.jsonl`.

One JSON object per line (topic, key, value and headers base64-encoded, exactly as they were to be
produced — so eventId, key, signature and trace headers survive), appended and fsynced before
`append` returns. A cursor file remembers how far each day file has been replayed; a fully replayed
file is deleted. Lines that cannot be replayed (unparseable, or refused by the broker for good) are
moved to `<day>.jsonl.failed` for investigation. An advisory lock file serialises processes sharing
the directory.
"""

from __future__ import annotations

import binascii
import contextlib
import datetime as dt
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FallbackSpool", "SpoolBatch", "SpoolStatus", "SpooledRecord"]

_CURSOR = ".cursor.json"
_LOCK = ".lock"


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    """One record as it was meant for the broker."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    def to_line(self) -> bytes:
        line = {
            "topic": self.topic,
            "key": _b64(self.key) if self.key is not None else None,
            "value": _b64(self.value),
            "headers": [[name, _b64(value or b"")] for name, value in self.headers],
            "spooledAt": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        }
        return json.dumps(line, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> SpooledRecord:
        """Raises ValueError/KeyError/TypeError for a line that is not a spooled record."""
        raw = json.loads(line)
        unb64 = binascii.a2b_base64  # binascii.Error is a ValueError
        key = raw["key"]
        return cls(
            topic=str(raw["topic"]),
            key=unb64(key) if key is not None else None,
            value=unb64(raw["value"]),
            headers=[(str(name), unb64(value)) for name, value in raw["headers"]],
        )


def _b64(data: bytes) -> str:
    """Standard base64 text (binascii directly: a replayed record decodes ~15 fields, so the
    `base64` module's per-call argument checks would be most of the replay's cost)."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


@dataclass(frozen=True, slots=True)
class SpoolBatch:
    """Lines of one day file read from `start` up to byte `end` (exclusive)."""

    path: Path
    start: int
    end: int
    lines: list[tuple[int, bytes]]  # (byte offset just past the line, raw line)


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    directory: Path
    files: list[Path]
    pending_records: int
    pending_bytes: int
    failed_files: list[Path]
    failed_records: int


class FallbackSpool:
    """Append-only day files with a replay cursor; safe across threads and processes."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.RLock()
        self._maybe_pending = bool(self._day_files())

    # -- locking --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the spool for this thread and process (appends, cursor moves, file removal)."""
        with self._thread_lock, open(self.directory / _LOCK, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- writing --------------------------------------------------------------------------------
    def append(self, records: list[SpooledRecord]) -> Path:
        """Append records to today's file and fsync; returns the file."""
        path = self.directory / f"{dt.datetime.now(dt.UTC):%Y-%m-%d}.jsonl"
        data = b"".join(record.to_line() for record in records)
        with self.locked():
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._maybe_pending = True
        return path

    # -- reading --------------------------------------------------------------------------------
    def has_pending(self) -> bool:
        """Cheap: is anything (possibly) waiting? New records must queue behind it while True."""
        return self._maybe_pending

    def next_batch(self, max_records: int = 10_000) -> SpoolBatch | None:
        """The oldest unreplayed lines (of the oldest file with any), or None when the spool is empty."""
        with self.locked():
            cursor = self._read_cursor()
            for path in self._day_files():
                start = cursor.get(path.name, 0)
                size = path.stat().st_size
                if start >= size:
                    self._drop(path, cursor)
                    continue
                lines: list[tuple[int, bytes]] = []
                with open(path, "rb") as handle:
                    handle.seek(start)
                    offset = start
                    for line in handle:
                        if not line.endswith(b"\n"):
                            break  # a torn final line (crash mid-write): not a record yet
                        offset += len(line)
                        lines.append((offset, line))
                        if len(lines) >= max_records:
                            break
                if lines:
                    return SpoolBatch(path, start, lines[-1][0], lines)
                return None
            self._write_cursor(cursor)
            self._maybe_pending = False
            return None

    def advance(self, batch: SpoolBatch, upto: int) -> None:
        """Mark the batch's lines up to byte `upto` replayed; delete a file replayed to its end."""
        with self.locked():
            cursor = self._read_cursor()
            if upto > cursor.get(batch.path.name, 0):
                cursor[batch.path.name] = upto
            if batch.path.exists() and cursor[batch.path.name] >= batch.path.stat().st_size:
                self._drop(batch.path, cursor)
            self._write_cursor(cursor)
            if not self._day_files():
                self._maybe_pending = False

    def quarantine(self, batch: SpoolBatch, line: bytes, reason: str) -> None:
        """Move one line to `<file>.failed` with the reason, for a human to look at."""
        entry = json.dumps({"reason": reason, "line": line.decode(errors="replace").rstrip("\n")}) + "\n"
        failed = batch.path.with_name(batch.path.name + ".failed")
        with self.locked(), open(failed, "a", encoding="utf-8") as handle:
            handle.write(entry)
            handle.flush()
            os.fsync(handle.fileno())

    def status(self) -> SpoolStatus:
        with self.locked():
            cursor = self._read_cursor()
            files = self._day_files()
            pending = size = 0
            for path in files:
                start = cursor.get(path.name, 0)
                with open(path, "rb") as handle:
                    handle.seek(start)
                    chunk = handle.read()
                pending += chunk.count(b"\n")
                size += len(chunk)
            failed = sorted(self.directory.glob("*.jsonl.failed"))
            failed_records = sum(path.read_bytes().count(b"\n") for path in failed)
        return SpoolStatus(self.directory, files, pending, size, failed, failed_records)

    # -- internals ------------------------------------------------------------------------------
    def _day_files(self) -> list[Path]:
        return sorted(self.directory.glob("????-??-??.jsonl"))

    def _read_cursor(self) -> dict[str, int]:
        try:
            return {str(k): int(v) for k, v in json.loads((self.directory / _CURSOR).read_text()).items()}
        except (FileNotFoundError, ValueError):
            return {}

    def _write_cursor(self, cursor: dict[str, int]) -> None:
        tmp = self.directory / (_CURSOR + ".tmp")
        tmp.write_text(json.dumps(cursor))
        os.replace(tmp, self.directory / _CURSOR)

    def _drop(self, path: Path, cursor: dict[str, int]) -> None:
        path.unlink(missing_ok=True)
        cursor.pop(path.name, None)
