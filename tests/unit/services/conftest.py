from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from awesomme.core.config import Settings
from awesomme.core.db import engine_for, migrate


@pytest.fixture()
def session(settings: Settings) -> Iterator[Session]:
    """A session on the migrated database of the module's ``settings`` (SQLite, then PostgreSQL)."""
    migrate(settings.db_url)
    with Session(engine_for(settings.db_url)) as db:
        yield db
