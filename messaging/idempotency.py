"""Idempotency keys in PostgreSQL: a redelivered or concurrently delivered event runs its handler once.

Key = sha256(eventId + correlationId + handler name). Arrive → check (a succeeded key returns its
cached result and counts a duplicate) → acquire (row `in_progress` with a lease, so two consumers
never both run it; a lease that ran out may be taken over) → process → store the result (kept
24 h) or the error (kept 30 s and immediately re-acquirable, so a retry can run). `purge_expired`
deletes what has expired. Every operation takes a whole batch in a few statements (`unnest` arrays),
never one per key. During a redelivery (the last batch was mostly keys already done) a batch reads
its done keys first and claims only the rest: a duplicate then costs an index lookup, not a row lock
and a WAL record.

Leases are short (15 s by default, so a killed consumer blocks its replacement briefly) and renewed
while their handlers run: the consumer `hold`s the keys it acquired for as long as it works on them,
and a heartbeat thread extends the lease of every held key each `lease / 3` seconds, so a handler
slower than the lease keeps its claim. A dead process stops renewing and its keys are taken over
once their lease has run out.

For a handler that writes to the same database, `claim(..., final=True, conn=tx)` inserts the key
as succeeded inside the handler's own transaction: both commit together or not at all, and a
concurrent claimant blocks on the row until that transaction ends.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, text

from core.db import ensure_schema_once
from messaging.metrics import METRICS
from messaging.tables import metadata

__all__ = ["DEFAULT_LEASE_S", "Claim", "ClaimState", "IdempotencyStore", "KeyRequest", "idempotency_key"]

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 15.0


def idempotency_key(event_id: uuid.UUID | str, correlation_id: uuid.UUID | str, handler: str) -> str:
    """sha256(eventId + correlationId + handler), hex."""
    return hashlib.sha256(f"{event_id}{correlation_id}{handler}".encode()).hexdigest()


class ClaimState(enum.StrEnum):
    ACQUIRED = "acquired"  # run the handler
    DUPLICATE = "duplicate"  # already succeeded: skip, `result` is the cached result
    BUSY = "busy"  # another consumer holds a live lease: try again later


class KeyRequest(NamedTuple):
    """One handler's key for one event. (Tuples: a batch makes hundreds of these and of `Claim`s.)"""

    key: str
    handler: str
    event_id: uuid.UUID
    correlation_id: uuid.UUID

    @classmethod
    def of(cls, event_id: uuid.UUID, correlation_id: uuid.UUID, handler: str) -> KeyRequest:
        return cls(idempotency_key(event_id, correlation_id, handler), handler, event_id, correlation_id)


class Claim(NamedTuple):
    key: str
    state: ClaimState
    result: Any = None


# The statements are written for psycopg (`%(name)s`, and `%(name)b` for the arrays: sent in binary,
# which costs a small fraction of quoting 500 keys as an array literal) and run with `exec_driver_sql`.
_CLAIM = """
INSERT INTO messaging.idempotency_keys AS k
    (key, handler, event_id, correlation_id, status, owner, lease_until, expires_at, attempts,
     created_at, updated_at)
SELECT r.key, r.handler, r.event_id, r.correlation_id, CAST(%(status)s AS text), CAST(%(owner)s AS text),
       CASE WHEN CAST(%(status)s AS text) = 'in_progress'
            THEN now() + make_interval(secs => CAST(%(lease)s AS double precision)) END,
       now() + make_interval(secs => CAST(%(ttl)s AS double precision)), 1, now(), now()
FROM unnest(CAST(%(keys)b AS text[]), CAST(%(handlers)b AS text[]), CAST(%(event_ids)b AS uuid[]),
            CAST(%(correlation_ids)b AS uuid[])) AS r(key, handler, event_id, correlation_id)
ORDER BY r.key
ON CONFLICT (key) DO UPDATE SET
    status = EXCLUDED.status, owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until,
    expires_at = EXCLUDED.expires_at, attempts = k.attempts + 1, result = NULL, updated_at = now()
WHERE k.status = 'failed' OR k.expires_at < now()
   OR (k.status = 'in_progress' AND (k.lease_until < now() OR k.owner = EXCLUDED.owner))
RETURNING k.key
"""

_LOOKUP = """
SELECT key, status, result FROM messaging.idempotency_keys WHERE key = ANY(CAST(%(keys)b AS text[]))
"""

# Keys already done (a redelivery): read, never written. `_CLAIM` on such a key row-locks it to test
# its conflict filter (one WAL record per key, and a wait on a row another transaction holds).
_SETTLED = """
SELECT key, result FROM messaging.idempotency_keys
WHERE key = ANY(CAST(%(keys)b AS text[])) AND status = 'succeeded' AND expires_at >= now()
"""

_COMPLETE_BARE = """
UPDATE messaging.idempotency_keys
SET status = 'succeeded', result = NULL, lease_until = NULL,
    expires_at = now() + make_interval(secs => CAST(%(ttl)s AS double precision)), updated_at = now()
WHERE key = ANY(CAST(%(keys)b AS text[]))
"""

_COMPLETE = """
UPDATE messaging.idempotency_keys AS k
SET status = 'succeeded', result = CAST(r.result AS jsonb), lease_until = NULL,
    expires_at = now() + make_interval(secs => CAST(%(ttl)s AS double precision)), updated_at = now()
FROM unnest(CAST(%(keys)b AS text[]), CAST(%(results)b AS text[])) AS r(key, result)
WHERE k.key = r.key
"""

_FAIL = """
UPDATE messaging.idempotency_keys AS k
SET status = 'failed', result = jsonb_build_object('error', r.error), lease_until = NULL,
    expires_at = now() + make_interval(secs => CAST(%(ttl)s AS double precision)), updated_at = now()
FROM unnest(CAST(%(keys)b AS text[]), CAST(%(errors)b AS text[])) AS r(key, error)
WHERE k.key = r.key AND k.owner = %(owner)s AND k.status = 'in_progress'
"""

_RELEASE = """
DELETE FROM messaging.idempotency_keys
WHERE key = ANY(CAST(%(keys)b AS text[])) AND status = 'in_progress' AND owner = %(owner)s
"""

# A renewal never waits for a row lock: a locked key is being settled (completed, failed, released)
# by its batch right now, and waiting for it could deadlock with that statement, each holding rows
# the other wants. The rest are renewed at once.
_RENEW = """
UPDATE messaging.idempotency_keys
SET lease_until = now() + make_interval(secs => CAST(%(lease)s AS double precision)),
    expires_at = now() + make_interval(secs => CAST(%(lease)s AS double precision)), updated_at = now()
WHERE key IN (SELECT key FROM messaging.idempotency_keys
              WHERE key = ANY(CAST(%(keys)b AS text[])) AND status = 'in_progress' AND owner = %(owner)s
              FOR UPDATE SKIP LOCKED)
"""

_PURGE = "DELETE FROM messaging.idempotency_keys WHERE expires_at < now()"


class IdempotencyStore:
    """Batch-oriented idempotency keys for one process (`owner` names its leases)."""

    def __init__(self, engine: Engine, *, lease: float = DEFAULT_LEASE_S, success_ttl: float = 24 * 3600.0,
                 error_ttl: float = 30.0, owner: str | None = None, migrate: bool = True) -> None:
        self.engine = engine
        self.lease = lease
        self.success_ttl = success_ttl
        self.error_ttl = error_ttl
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._held: dict[str, int] = {}  # key -> how many holders
        # The last batch claimed was mostly keys already succeeded: a redelivery (after a crash, a
        # rebalance, a replay) comes in runs of them, so the next batch looks its keys up first. A hint
        # only (consumers sharing the store may flip it): a wrong guess costs a statement, never a claim.
        self._redelivery = False
        self._lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None
        if migrate:
            ensure_schema_once(engine, metadata)

    def claim(self, requests: Iterable[KeyRequest], *, final: bool = False,
              conn: Connection | None = None) -> dict[str, Claim]:
        """Check and acquire many keys at once; one `Claim` per distinct key.

        `final=True` (only with `conn`, the handler's transaction) records success directly.
        """
        unique = {request.key: request for request in requests}
        if not unique:
            return {}
        params = {
            "keys": list(unique), "handlers": [r.handler for r in unique.values()],
            "event_ids": [r.event_id for r in unique.values()],
            "correlation_ids": [r.correlation_id for r in unique.values()],
            "status": "succeeded" if final else "in_progress", "owner": self.owner,
            "lease": self.lease, "ttl": self.success_ttl if final else self.lease,
        }
        if conn is not None:
            return self._claim(conn, params)
        with self.engine.begin() as own:
            return self._claim(own, params)

    def _claim(self, conn: Connection, params: dict[str, Any]) -> dict[str, Claim]:
        """`_CLAIM` the keys, then look up those it did not acquire (done, or another's live lease).

        During a redelivery the keys already succeeded are looked up first (`_SETTLED`) and only the
        rest are claimed: the same claims in about half the database time, without locking the rows of
        keys already done. The first batch of new keys after it pays one lookup that finds nothing, then
        claims as usual.
        """
        requested = len(params["keys"])
        claims: dict[str, Claim] = {}
        if self._redelivery and params["status"] == "in_progress":
            settled = conn.exec_driver_sql(_SETTLED, {"keys": params["keys"]})
            claims = {row[0]: Claim(row[0], ClaimState.DUPLICATE, row[1]) for row in settled}
            if claims:
                params = _without(params, claims)
        if params["keys"]:
            acquired = {row[0] for row in conn.exec_driver_sql(_CLAIM, params)}
            claims.update((key, Claim(key, ClaimState.ACQUIRED)) for key in acquired)
            rest = [key for key in params["keys"] if key not in acquired]
            if rest:
                found = {row[0]: row for row in conn.exec_driver_sql(_LOOKUP, {"keys": rest})}
                for key in rest:
                    row = found.get(key)
                    if row is not None and row[1] == "succeeded":
                        claims[key] = Claim(key, ClaimState.DUPLICATE, row[2])
                    else:
                        claims[key] = Claim(key, ClaimState.BUSY)
        duplicates = sum(1 for claim in claims.values() if claim.state is ClaimState.DUPLICATE)
        if duplicates:
            METRICS.add("duplicates", duplicates)
        if params["status"] == "in_progress":  # a handler's own transactional claim is no batch
            self._redelivery = 2 * duplicates > requested
        return claims

    def complete(self, results: Mapping[str, Any], *, conn: Connection | None = None) -> None:
        """Store handler results (JSON-serialisable or None) for keys that succeeded."""
        if not results:
            return
        # Most handlers return None: those keys take the cheaper statement (an index lookup per key
        # rather than a join with the results); both statements commit together.
        bare = [key for key, value in results.items() if value is None]
        statements: list[tuple[str, dict[str, Any]]] = []
        if bare:
            statements.append((_COMPLETE_BARE, {"keys": bare, "ttl": self.success_ttl}))
        if len(bare) < len(results):
            valued = {key: value for key, value in results.items() if value is not None}
            statements.append((_COMPLETE, {"keys": list(valued), "ttl": self.success_ttl,
                                           "results": [json.dumps(v, default=str) for v in valued.values()]}))
        self._run(statements, conn)

    def fail(self, errors: Mapping[str, str], *, conn: Connection | None = None) -> None:
        """Record failures briefly (`error_ttl`); the key stays re-acquirable for the retry."""
        if errors:
            self._run([(_FAIL, {"keys": list(errors), "errors": list(errors.values()), "ttl": self.error_ttl,
                                "owner": self.owner})], conn)

    def release(self, keys: Iterable[str], *, conn: Connection | None = None) -> None:
        """Give back keys acquired but not processed (their partition stopped on an earlier failure)."""
        keys = list(keys)
        if keys:
            self._run([(_RELEASE, {"keys": keys, "owner": self.owner})], conn)

    # -- lease renewal --------------------------------------------------------------------------
    def hold(self, keys: Iterable[str]) -> None:
        """Keep renewing the leases of `keys` (acquired by `claim`) until they are `drop`ped."""
        with self._lock:
            for key in keys:
                self._held[key] = self._held.get(key, 0) + 1
            if self._held and self._heartbeat is None:
                self._heartbeat = threading.Thread(target=self._beat, name=f"idempotency-lease-{self.owner}",
                                                   daemon=True)
                self._heartbeat.start()

    def drop(self, keys: Iterable[str]) -> None:
        """Stop renewing `keys` (done with them, whatever the outcome)."""
        with self._lock:
            for key in keys:
                count = self._held.get(key, 0) - 1
                if count > 0:
                    self._held[key] = count
                else:
                    self._held.pop(key, None)

    def held(self) -> set[str]:
        with self._lock:
            return set(self._held)

    def renew(self, keys: Iterable[str]) -> int:
        """Extend the lease of these in-progress keys of this owner by `lease` from now; returns how many."""
        keys = list(keys)
        if not keys:
            return 0
        with self.engine.begin() as conn:
            renewed = conn.exec_driver_sql(_RENEW, {"keys": keys, "owner": self.owner, "lease": self.lease})
            return renewed.rowcount

    def _beat(self) -> None:
        """Renew every held key each `lease / 3` seconds; exit when nothing is held (`hold` restarts it)."""
        interval = self.lease / 3
        while True:
            time.sleep(interval)
            with self._lock:
                keys = list(self._held)
                if not keys:
                    self._heartbeat = None
                    return
            try:
                renewed = self.renew(keys)
                METRICS.add("lease_renewals", renewed)
            except Exception as exc:  # noqa: BLE001 - database away: the next beat tries again
                log.warning("cannot renew %d idempotency lease(s): %s", len(keys), exc)

    def purge_expired(self) -> int:
        """Delete expired keys (succeeded after 24 h, failed after 30 s, abandoned leases); returns how
        many."""
        with self.engine.begin() as conn:
            return conn.exec_driver_sql(_PURGE).rowcount

    def status_of(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(text("SELECT * FROM messaging.idempotency_keys WHERE key = :k"), {"k": key})
            found = row.mappings().first()
            return dict(found) if found else None

    def _run(self, statements: list[tuple[str, dict[str, Any]]], conn: Connection | None) -> None:
        """The statements in `conn`'s transaction, or in one of their own."""
        if conn is not None:
            for statement, params in statements:
                conn.exec_driver_sql(statement, params)
            return
        with self.engine.begin() as own:
            for statement, params in statements:
                own.exec_driver_sql(statement, params)


def _without(params: dict[str, Any], keys: Mapping[str, Any]) -> dict[str, Any]:
    """`_CLAIM`'s parameters for the requested keys not in `keys` (the four arrays stay aligned)."""
    keep = [i for i, key in enumerate(params["keys"]) if key not in keys]
    columns = ("keys", "handlers", "event_ids", "correlation_ids")
    return {**params, **{column: [params[column][i] for i in keep] for column in columns}}
