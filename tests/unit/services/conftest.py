from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from awesomme.core.config import Settings
from awesomme.core.db import engine_for, forget_engine, migrate


@pytest.fixture()
def session(settings: Settings) -> Iterator[Session]:
    """A session on the migrated database of the module's ``settings`` (SQLite, then PostgreSQL)."""
    migrate(settings.db_url)
    with Session(engine_for(settings.db_url)) as db:
        yield db


@pytest.fixture()
def platform_db(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The platform's own settings pointed at a fresh migrated database (SQLite, then PostgreSQL), for code that
    opens its sessions itself (``session_scope``)."""
    for name in [name for name in os.environ if name.startswith("AWESOMME_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWESOMME_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("AWESOMME_DATABASE_URL", db_url)
    forget_engine()
    migrate()
    try:
        yield db_url
    finally:
        forget_engine()
