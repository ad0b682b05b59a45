"""`unreachable_database`: a refused or lost connection is named in one line, a statement's error is not."""

from __future__ import annotations

import socket

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy import exc as sa_exc

from core.db import unreachable_database


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_a_refused_connection_names_the_database_without_its_password() -> None:
    engine = create_engine(f"postgresql+psycopg://u:secret@127.0.0.1:{_closed_port()}/shop",
                           connect_args={"connect_timeout": 2})
    with pytest.raises(sa_exc.OperationalError) as refused:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    line = unreachable_database(refused.value, engine)
    where = f"the database at 127.0.0.1:{engine.url.port}/shop"
    assert line is not None and line.startswith(f"{where} is unreachable (")
    assert "secret" not in line and "\n" not in line
    wrapped = RuntimeError("batch failed")
    wrapped.__cause__ = refused.value
    assert unreachable_database(wrapped) is not None  # found behind what the caller raised


@pytest.mark.parametrize("error", [
    psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
    psycopg.errors.DeadlockDetected("deadlock detected"),
    sa_exc.IntegrityError("INSERT", {}, psycopg.errors.UniqueViolation("duplicate key")),
    ValueError("bad data"),
])
def test_a_statement_error_is_not_an_outage(error: BaseException) -> None:
    assert unreachable_database(error) is None


def test_a_server_going_away_is_an_outage() -> None:
    lost = sa_exc.OperationalError("SELECT 1", {}, psycopg.errors.AdminShutdown(
        "terminating connection due to unexpected postmaster exit"))
    assert unreachable_database(lost) == (
        "the database is unreachable (terminating connection due to unexpected postmaster exit)")
