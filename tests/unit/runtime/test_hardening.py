"""The start routine's refusal: a secret readable by others whose mode cannot be fixed stops the start, by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from awesomme.core.config import Settings
from awesomme.core.db import engine_for, migrate
from awesomme.runtime import hardening
from awesomme.runtime.hardening import UnsafeSecret, secure_installation, tighten_modes
from awesomme.services import identity


@pytest.fixture()
def umask_022() -> object:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_unfixable_readable_secret_refuses_the_start_and_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask_022: object
) -> None:
    settings = Settings(var_dir=tmp_path / "var", database_url="")
    settings.var_dir.mkdir(mode=0o700)
    settings.secrets_file.write_text("AWESOMME_ORTHANC_PASSWORD=x\n")
    settings.secrets_file.chmod(0o644)
    (settings.var_dir / "notes.txt").write_text("not a secret")
    (settings.var_dir / "notes.txt").chmod(0o644)
    real_chmod = os.chmod

    def chmod(path: object, mode: int, **kwargs: object) -> None:  # a file owned by another account, say
        if Path(str(path)).suffix in (".env", ".txt"):
            raise PermissionError(1, "Operation not permitted", str(path))
        real_chmod(path, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hardening.os, "chmod", chmod)
    with pytest.raises(UnsafeSecret, match=str(settings.secrets_file)):
        secure_installation(settings)
    settings.secrets_file.unlink()  # the secret gone: an unfixable ordinary file is only a warning
    report = secure_installation(settings)
    assert any(line.startswith("WARNING") and "notes.txt" in line for line in report.lines), report.lines


def test_modes_lose_group_and_other_bits_and_keep_the_owners(tmp_path: Path, umask_022: object) -> None:
    tmp_path.chmod(0o755)
    tool = tmp_path / "bin" / "tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    data = tmp_path / "data"
    data.write_text("x")
    data.chmod(0o664)
    (tmp_path / "link").symlink_to("/etc/hostname")  # a link is never followed out of var/
    before = Path("/etc/hostname").stat().st_mode
    changed, failed = tighten_modes([tmp_path])
    assert failed == [] and set(changed) == {tmp_path, tool.parent, tool, data}
    assert [oct(p.stat().st_mode & 0o777) for p in (tmp_path, tool.parent, tool, data)] == [
        "0o700",
        "0o700",
        "0o700",
        "0o600",
    ]
    assert Path("/etc/hostname").stat().st_mode == before
    assert tighten_modes([tmp_path]) == ([], [])


def test_start_with_the_wrong_key_encryption_key_stops_with_a_clear_reason(tmp_path: Path, umask_022: object) -> None:
    settings = Settings(var_dir=tmp_path / "var", database_url="")
    migrate(settings.db_url)
    with Session(engine_for(settings.db_url)) as session:
        identity.rotate_keys(session, settings)
        session.commit()
    assert secure_installation(settings).lines == []
    settings.key_encryption_key_file.write_text("another key, at least thirty-two characters long\n")
    with pytest.raises(RuntimeError, match=r"cannot be decrypted.*AWESOMME_KEY_ENCRYPTION_KEY"):
        secure_installation(settings)
