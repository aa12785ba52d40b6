"""The platform database: SQLAlchemy engine and sessions, schema managed by Alembic."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from awesomme.core.config import get_settings

__all__ = [
    "SQL_INT_MAX",
    "database_answers",
    "engine_for",
    "forget_engine",
    "get_engine",
    "migrate",
    "row_id",
    "session_scope",
    "sqlite_path",
]

# Row ids are SQL integers (64 bits): a larger number names nothing, and the database driver cannot even bind it
# (an OverflowError: a 500).
SQL_INT_MAX = 2**63 - 1


def row_id(reference: str | int) -> int | None:
    """The row id ``reference`` can name (ASCII digits, or an int, from 1 to ``SQL_INT_MAX``); None otherwise."""
    if isinstance(reference, str):
        if not (reference.isascii() and reference.isdigit()):
            return None
        reference = int(reference)
    return reference if 1 <= reference <= SQL_INT_MAX else None


MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database, or SQLite in memory)."""
    if not url.startswith("sqlite:///"):
        return None
    name = url.removeprefix("sqlite:///").split("?", 1)[0]
    return Path(name) if name and name != ":memory:" else None


def _ensure_sqlite_directory(url: str) -> None:
    """The database file exists, owner-only (0600) before SQLite opens it: SQLite gives its -wal and -shm files the
    mode of the database file, so they are owner-only too, whatever the process's umask."""
    path = sqlite_path(url)
    if path is None:
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))  # an empty file is a new database to SQLite


def engine_for(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        _ensure_sqlite_directory(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@lru_cache(maxsize=1)
def get_engine() -> Engine:
    return engine_for(get_settings().db_url)


@lru_cache(maxsize=1)
def _session_factory() -> sessionmaker[Session]:
    return sessionmaker(get_engine(), expire_on_commit=False)


def forget_engine() -> None:
    """Drop the cached engine and settings (a process that switches to another platform's DB, as tests do)."""
    _session_factory.cache_clear()
    get_engine.cache_clear()
    get_settings.cache_clear()


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back when it raises."""
    session = _session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url)
    return config


def migrate(url: str | None = None) -> None:
    url = url or get_settings().db_url
    _ensure_sqlite_directory(url)
    command.upgrade(alembic_config(url), "head")


def database_answers() -> bool:
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1 FROM alembic_version"))
    except Exception:
        return False
    return True
