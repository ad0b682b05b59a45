"""Schema creation and additive evolution on the real PostgreSQL: `ensure_schema` creates what is
missing and adds to a table of an older release the columns and indexes its metadata gained, keeping
the rows; what cannot be added safely is refused with a message naming it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Engine, Index, Integer, MetaData, String, Table, insert, inspect, select, text

from core.db import SchemaEvolutionError, engine_for, ensure_schema
from core.settings import Settings

pytestmark = pytest.mark.stack


@pytest.fixture
def schema(stack, settings: Settings, unique: str) -> Iterator[tuple[Engine, str]]:
    engine = engine_for(settings.dsn)
    name = f"evolve_{unique}"
    yield engine, name
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))


def _release_1(schema: str) -> MetaData:
    metadata = MetaData(schema=schema)
    Table("things", metadata, Column("id", Integer, primary_key=True),
          Column("name", String(20), nullable=False))
    return metadata


def test_a_newer_release_adds_its_columns_and_indexes_and_keeps_the_rows(schema: tuple[Engine, str]) -> None:
    engine, name = schema
    first = _release_1(name)
    assert ensure_schema(engine, first) == []  # created from nothing: nothing to add
    with engine.begin() as conn:
        conn.execute(insert(first.tables[f"{name}.things"]).values(id=1, name="old row"))

    second = MetaData(schema=name)
    things = Table(
        "things", second,
        Column("id", Integer, primary_key=True),
        Column("name", String(20), nullable=False),
        Column("note", String(50)),  # nullable: old rows get NULL
        Column("weight", Integer, nullable=False, server_default="7"),  # old rows get the default
    )
    Index("things_weight_idx", things.c.weight)
    added = ensure_schema(engine, second)
    assert added == [f"column {name}.things.note", f"column {name}.things.weight",
                     f"index things_weight_idx on {name}.things"]
    assert ensure_schema(engine, second) == []  # idempotent

    columns = {c["name"] for c in inspect(engine).get_columns("things", schema=name)}
    assert {"note", "weight"} <= columns
    assert "things_weight_idx" in {i["name"] for i in inspect(engine).get_indexes("things", schema=name)}
    with engine.begin() as conn:
        assert conn.execute(select(things.c.id, things.c.name, things.c.note, things.c.weight)).all() == [
            (1, "old row", None, 7)]
        conn.execute(insert(things).values(id=2, name="new row", note="n"))  # a new writer works too
        # and so does an old one, which knows nothing of the new columns
        conn.execute(insert(first.tables[f"{name}.things"]).values(id=3, name="older writer"))


def test_a_not_null_column_without_default_is_refused_by_name(schema: tuple[Engine, str]) -> None:
    engine, name = schema
    ensure_schema(engine, _release_1(name))
    bad = MetaData(schema=name)
    Table("things", bad, Column("id", Integer, primary_key=True), Column("name", String(20), nullable=False),
          Column("owner", String(20), nullable=False))
    with pytest.raises(SchemaEvolutionError,
                       match=rf"{name}\.things\.owner is NOT NULL without a server default"):
        ensure_schema(engine, bad)
    assert "owner" not in {c["name"] for c in inspect(engine).get_columns("things", schema=name)}
