from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from awesomme.core.config import Settings


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("AWESOMME_")]:
        monkeypatch.delenv(name)


def test_defaults_are_loopback_and_sqlite_under_var(tmp_path) -> None:
    settings = Settings(var_dir=tmp_path)
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.db_url == f"sqlite:///{tmp_path / 'awesomme.db'}"


def test_other_addresses_need_an_explicit_opt_in() -> None:
    with pytest.raises(ValidationError, match="AWESOMME_ALLOW_REMOTE"):
        Settings(host="0.0.0.0")
    assert Settings(host="0.0.0.0", allow_remote=True).host == "0.0.0.0"


def test_production_refuses_a_weak_orthanc_password() -> None:
    with pytest.raises(ValidationError, match="ORTHANC_PASSWORD"):
        Settings(environment="production", orthanc_password="orthanc")
    Settings(environment="production", orthanc_password="x" * 32)


def test_production_refuses_a_default_database_password() -> None:
    strong = "x" * 32
    for url in ("postgresql+psycopg://awesomme:postgres@db/awesomme", "postgresql+psycopg://a:short@db/a"):
        with pytest.raises(ValidationError, match="DATABASE_URL"):
            Settings(environment="production", orthanc_password=strong, database_url=url)
    Settings(environment="production", orthanc_password=strong, database_url=f"postgresql+psycopg://a:{strong}@db/a")
    # Development keeps its embedded defaults.
    Settings(database_url="postgresql+psycopg://awesomme:postgres@db/awesomme")


def test_environment_variables_use_the_awesomme_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWESOMME_CACHE_MAX_BYTES", "1234")
    assert Settings().cache_max_bytes == 1234


def test_production_refuses_a_short_key_encryption_key() -> None:
    strong = "x" * 32
    with pytest.raises(ValueError, match="AWESOMME_KEY_ENCRYPTION_KEY"):
        Settings(environment="production", orthanc_password=strong, key_encryption_key="changeme")
    Settings(environment="production", orthanc_password=strong, key_encryption_key="k" * 40)
    Settings(environment="production", orthanc_password=strong)  # none given: a generated key file is used
