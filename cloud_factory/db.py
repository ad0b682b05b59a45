"""SQLAlchemy engines and schema creation; each service owns one PostgreSQL schema.

Tables are declared with SQLAlchemy metadata per service and created idempotently at worker start
(`ensure_schema`), so a fresh database needs no hand-run DDL.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine, MetaData, create_engine, text

__all__ = ["engine_for", "ensure_schema", "ensure_schema_once"]


@lru_cache(maxsize=8)
def engine_for(dsn: str) -> Engine:
    """One pooled engine per DSN per process."""
    return create_engine(dsn, pool_pre_ping=True, pool_size=5, max_overflow=5)


def ensure_schema(engine: Engine, metadata: MetaData) -> None:
    """Create the metadata's PostgreSQL schema(s) and tables when missing."""
    schemas = {table.schema for table in metadata.tables.values() if table.schema}
    with engine.begin() as conn:
        for schema in sorted(schemas):
            # Serialise concurrent workers creating the same schema.
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": schema})
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        metadata.create_all(conn, checkfirst=True)


_ensured: set[tuple[str, int]] = set()


def ensure_schema_once(engine: Engine, metadata: MetaData) -> None:
    """`ensure_schema`, at most once per process for each (database, metadata): cheap to call from
    every constructor that needs the tables."""
    key = (engine.url.render_as_string(hide_password=True), id(metadata))
    if key not in _ensured:
        ensure_schema(engine, metadata)
        _ensured.add(key)
