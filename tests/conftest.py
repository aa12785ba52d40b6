"""Fixtures shared by every suite: the platform database on each backend it supports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from awesomme.core.config import Settings
from tests import postgres

# Which database the integration suite's platform runs on: `sqlite` (the default) or `postgresql`.
BACKEND_VARIABLE = "AWESOMME_TEST_DATABASE"
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    """One PostgreSQL for the whole session, started on first use. Without one the tests that need it fail (with
    the reason and the fix): CI installs it, and a test that silently skipped would pass on SQLite alone."""
    try:
        with postgres.server() as server:
            yield server
    except postgres.PostgresUnavailable as error:
        pytest.fail(str(error), pytrace=False)


def _database(request: pytest.FixtureRequest, backend: str, sqlite_url: str) -> Iterator[str]:
    """``sqlite_url`` as it is, or a fresh database on the test PostgreSQL, dropped afterwards."""
    if backend == "sqlite":
        yield sqlite_url
        return
    server: postgres.PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    try:
        yield url
    finally:
        server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty platform database, not yet migrated: a SQLite file, or a fresh database on the test PostgreSQL."""
    sqlite_url = Settings(var_dir=tmp_path, database_url="").db_url  # never AWESOMME_DATABASE_URL, whatever it says
    yield from _database(request, request.param, sqlite_url)


@pytest.fixture(scope="session")
def platform_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """``AWESOMME_DATABASE_URL`` for a test platform: empty (its SQLite file under var/) or a fresh PostgreSQL
    database, as ``AWESOMME_TEST_DATABASE`` says."""
    backend = os.environ.get(BACKEND_VARIABLE, "").strip() or "sqlite"
    if backend not in BACKENDS:
        pytest.fail(f"{BACKEND_VARIABLE}={backend}: expected one of {', '.join(BACKENDS)}", pytrace=False)
    yield from _database(request, backend, "")
