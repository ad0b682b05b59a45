"""SQLAlchemy engines and schema creation; each service owns one PostgreSQL schema.

Tables are declared with SQLAlchemy metadata per service and created idempotently at worker start
(`ensure_schema`), so a fresh database needs no hand-run DDL. The metadata is also the migration:
a column or an index added to a table that already exists is added to the database the next time a
worker starts (additive evolution only — nothing is dropped, renamed or retyped; a new NOT NULL
column needs a server default, so the rows already there get a value and older writers keep working).
"""

from __future__ import annotations

import logging
from functools import lru_cache

from sqlalchemy import Connection, Engine, MetaData, create_engine, inspect, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.schema import CreateColumn

__all__ = ["CONNECT_TIMEOUT_S", "SchemaEvolutionError", "database_address", "engine_for", "ensure_schema",
           "ensure_schema_once", "unreachable_database"]

log = logging.getLogger(__name__)


class SchemaEvolutionError(RuntimeError):
    """The declared tables cannot be reached from the database's by adding columns and indexes."""


#: How long opening a connection may take. A server that accepts the TCP connection and then says
#: nothing (hung, or a wrong port) would otherwise hold a command for libpq's 130 s; a DSN's own
#: `connect_timeout` wins.
CONNECT_TIMEOUT_S = 10


@lru_cache(maxsize=8)
def engine_for(dsn: str) -> Engine:
    """One pooled engine per DSN per process."""
    timeout = {} if "connect_timeout=" in dsn else {"connect_timeout": CONNECT_TIMEOUT_S}
    return create_engine(dsn, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=timeout)


def database_address(engine: Engine) -> str:
    """`host:port/database` of the engine's URL: names the database in a log line, never its password."""
    url = engine.url
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


#: SQLSTATEs of a server going away or not taking connections yet (a crash, a shutdown, recovery);
#: libpq's own connection failures carry none. Class 08 is "connection exception".
_GONE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def _connection_lost(error: BaseException) -> bool:
    """A refused, broken or closed connection — not a statement's error (a cancelled query, a
    deadlock, a constraint), which the same exception classes also carry."""
    import psycopg

    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        error = error.orig if error.orig is not None else error
    if isinstance(error, psycopg.InterfaceError):
        return True
    if not isinstance(error, psycopg.OperationalError):
        return False
    sqlstate = error.sqlstate
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in _GONE_SQLSTATES


def unreachable_database(error: BaseException, engine: Engine | None = None) -> str | None:
    """One line saying the database is unreachable, when `error` (or what caused it) is a lost or
    refused connection; None for any other error. Workers log this line instead of a traceback per
    attempt, naming the database, so nobody looks at Kafka while PostgreSQL is down."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _connection_lost(current):
            cause = current.orig if isinstance(current, sa_exc.DBAPIError) and current.orig else current
            reason = str(cause).strip().splitlines() or [type(cause).__name__]
            where = f" at {database_address(engine)}" if engine is not None else ""
            return f"the database{where} is unreachable ({reason[0][:200]})"
        current = current.__cause__ or current.__context__
    return None


def ensure_schema(engine: Engine, metadata: MetaData) -> list[str]:
    """Create the metadata's PostgreSQL schema(s) and tables when missing, and add the columns and
    indexes that tables created by an older release lack. Returns what it added (for logs/tests)."""
    schemas = {table.schema for table in metadata.tables.values() if table.schema}
    with engine.begin() as conn:
        for schema in sorted(schemas):
            # Serialise concurrent workers creating the same schema.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        metadata.create_all(conn, checkfirst=True)
        added = _add_missing_columns_and_indexes(conn, metadata)
    for change in added:
        log.info("schema evolved: %s", change)
    return added


def _add_missing_columns_and_indexes(conn: Connection, metadata: MetaData) -> list[str]:
    inspector = inspect(conn)
    preparer = conn.dialect.identifier_preparer
    added: list[str] = []
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name, schema=table.schema)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable and column.server_default is None:
                raise SchemaEvolutionError(
                    f"{table.fullname}.{column.name} is NOT NULL without a server default, so it cannot be "
                    "added to the rows already there: give it a server_default or migrate by hand")
            spec = CreateColumn(column).compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN IF NOT EXISTS {spec}"))
            added.append(f"column {table.fullname}.{column.name}")
        indexes = {index["name"] for index in inspector.get_indexes(table.name, schema=table.schema)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn, checkfirst=True)
                added.append(f"index {index.name} on {table.fullname}")
    return added


_ensured: set[tuple[str, int]] = set()


def ensure_schema_once(engine: Engine, metadata: MetaData) -> None:
    """`ensure_schema`, at most once per process for each (database, metadata): cheap to call from
    every constructor that needs the tables."""
    key = (engine.url.render_as_string(hide_password=True), id(metadata))
    if key not in _ensured:
        ensure_schema(engine, metadata)
        _ensured.add(key)
