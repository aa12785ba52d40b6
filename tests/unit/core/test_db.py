"""Row ids from user input (never an overflow in the driver), and the SQLite files' modes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from awesomme.core.db import SQL_INT_MAX, engine_for, row_id, sqlite_path


@pytest.mark.parametrize(("reference", "expected"), [("1", 1), ("42", 42), (7, 7), (str(SQL_INT_MAX), SQL_INT_MAX)])
def test_ids_a_row_can_have(reference: str | int, expected: int) -> None:
    assert row_id(reference) == expected


@pytest.mark.parametrize(
    "reference", ["0", "0" * 3, "-1", -5, 0, str(SQL_INT_MAX + 1), "9" * 30, 10**40, "²", "١٢", "1.5", " 1", "", "abc"]
)
def test_anything_else_names_no_row(reference: str | int) -> None:
    assert row_id(reference) is None


def test_sqlite_database_and_its_wal_and_shm_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # a process that forgot the umask still creates an owner-only database
    try:
        url = f"sqlite:///{tmp_path / 'var' / 'awesomme.db'}"
        engine = engine_for(url)
        with engine.begin() as connection:  # a write, with another connection open: -wal and -shm exist meanwhile
            connection.execute(text("CREATE TABLE t (x TEXT)"))
            connection.execute(text("INSERT INTO t VALUES ('secret')"))
            with engine.connect() as reader:
                reader.execute(text("SELECT * FROM t")).all()
                files = sorted((tmp_path / "var").iterdir())
                assert [f.name for f in files] == ["awesomme.db", "awesomme.db-shm", "awesomme.db-wal"]
                assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == dict.fromkeys(
                    [f.name for f in files], "0o600"
                )
        assert (tmp_path / "var").stat().st_mode & 0o777 == 0o700
        engine.dispose()
    finally:
        os.umask(previous)
    assert sqlite_path(url) == tmp_path / "var" / "awesomme.db"
    assert sqlite_path("sqlite:///:memory:") is None and sqlite_path("postgresql://h/db") is None
