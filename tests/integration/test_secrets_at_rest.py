"""The platform's secrets and patient data under var/ are not readable by another local account.

The checks use a second OS user (``nobody``, through ``runuser``): it must fail to read every file the running
platform wrote. The test's own var/ lies under pytest's private temporary directory, which nobody can traverse
anyway; so each file is hard-linked into a directory that nobody may traverse, and read there: only the file's own
mode decides. Needs root (CI runs as root); elsewhere it fails and says so, it never skips.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from awesomme.core.config import Settings, load_settings
from awesomme.core.db import engine_for, migrate, session_scope, sqlite_path
from awesomme.core.security import (
    ENCRYPTED_KEY_PREFIX,
    KeyEncryptionError,
    decrypt_private_key,
    key_encryption_key,
    new_key_pair,
)
from awesomme.models import SigningKey
from awesomme.runtime.hardening import secure_installation
from tests.integration.conftest import Account, StoredPatient

OTHER_USER = "nobody"


def _need_root_and_a_second_user() -> None:
    if os.geteuid() != 0:
        pytest.fail("reading files as a second OS user needs root (runuser); CI runs as root", pytrace=False)
    if shutil.which("runuser") is None:
        pytest.fail("runuser (util-linux) is missing: cannot read files as a second OS user", pytrace=False)


@pytest.fixture()
def probe_dir() -> Iterator[Path]:
    """A directory another account may traverse (not list), on the same file system as the test's var/."""
    _need_root_and_a_second_user()
    directory = Path(tempfile.mkdtemp(prefix="awesomme-probe-"))
    directory.chmod(0o711)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def _readable_by_other_user(files: list[Path], probe_dir: Path) -> list[Path]:
    """The files ``OTHER_USER`` can read, judged by each file's own mode (hard links in ``probe_dir``)."""
    links = {}
    probe_dir = Path(tempfile.mkdtemp(dir=probe_dir))  # a fresh one per call
    probe_dir.chmod(0o711)
    for number, path in enumerate(files):
        link = probe_dir / str(number)
        try:
            os.link(path, link)
        except FileNotFoundError:  # a temporary file gone meanwhile
            continue
        except OSError as error:
            pytest.fail(f"cannot hard-link {path} next to the probe ({error.strerror}): var/ on another file system?")
        links[str(link)] = path
    script = 'for f in "$@"; do if cat "$f" > /dev/null 2>&1; then echo "$f"; fi; done'
    result = subprocess.run(
        ["runuser", "-u", OTHER_USER, "--", "sh", "-c", script, "sh", *links],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    # The probe itself must be able to read a readable file, or its "unreadable" means nothing.
    control = probe_dir / "control"
    control.write_text("readable")
    control.chmod(0o644)
    seen = subprocess.run(["runuser", "-u", OTHER_USER, "--", "cat", str(control)], capture_output=True, text=True)
    assert seen.stdout == "readable", f"the probe cannot read even a 0644 file: {seen.stderr}"
    return [links[line] for line in result.stdout.split()]


def _everything_under(root: Path) -> tuple[list[Path], list[Path]]:
    files, directories = [], [root]
    for directory, subdirectories, names in os.walk(root):
        directories += [Path(directory) / name for name in subdirectories]
        files += [Path(directory) / name for name in names if not (Path(directory) / name).is_symlink()]
    return files, directories


def _loose(paths: list[Path]) -> list[str]:
    loose = []
    for path in paths:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISLNK(mode) and mode & 0o077:
            loose.append(f"{path} {oct(stat.S_IMODE(mode))}")
    return loose


def test_var_files_of_the_running_platform_are_unreadable_by_another_local_account(
    platform: Settings,
    server_url: str,
    http: httpx.Client,
    admin: Account,
    mr_patient: StoredPatient,
    probe_dir: Path,
) -> None:
    var_dir = platform.var_dir
    # Fill what holds patient data and secrets: a decoded series in the cache, a token (signing key), a failed
    # upload (its temporary file), Orthanc's storage (the fixture stored a series).
    assert http.get("/datastore/image", params={"image": mr_patient.patient.series_uid}).status_code == 200
    admin.token(server_url)
    failed = http.put(
        "/datastore/label",
        params={"image": mr_patient.patient.series_uid, "tag": "final"},
        files={"label": ("label.nii.gz", b"not a NIfTI file" * 1000, "application/octet-stream")},
    )
    assert failed.status_code >= 400, failed.text
    files, directories = _everything_under(var_dir)
    database = sqlite_path(platform.db_url)
    expected = [
        platform.secrets_file,
        platform.key_encryption_key_file,
        var_dir / "orthanc" / "orthanc.json",
        var_dir / "orthanc" / "orthanc.log",
        var_dir / "log" / "server.log",
        var_dir / "server.pid",
    ]
    if database is not None:  # the SQLite backend (the default); on PostgreSQL its files are not ours
        expected += [database, database.with_name(database.name + "-wal")]
    for path in expected:
        assert path in files, f"{path} is missing: the check would prove nothing about it"
    storage = [f for f in files if var_dir / "orthanc" / "storage" in f.parents]
    assert len(storage) >= len(mr_patient.datasets) + 1  # the instances and Orthanc's index
    assert any(platform.cache_dir in f.parents for f in files), "no decoded series in the cache"

    assert _loose(files + directories) == []  # files 0600 (or 0700), directories 0700
    assert _readable_by_other_user(files, probe_dir) == []


def test_a_copy_of_the_database_alone_cannot_sign(
    platform: Settings, server_url: str, admin: Account, tmp_path: Path
) -> None:
    admin.token(server_url)  # at least one signing key exists
    with session_scope() as session:
        stored = {key.kid: key.private_pem for key in session.scalars(select(SigningKey))}
    assert stored
    for kid, value in stored.items():
        assert value.startswith(ENCRYPTED_KEY_PREFIX), f"signing key {kid} is stored in plain text"
        assert "PRIVATE KEY" not in value
        with pytest.raises(KeyEncryptionError):  # the thief's guess: any key-encryption key but ours
            decrypt_private_key(value, key_encryption_key(tmp_path / "guess.key"))
    database = sqlite_path(platform.db_url)
    if database is not None:  # no plain-text key anywhere in the files a copy would take (free pages, WAL)
        for path in (database, database.with_name(database.name + "-wal")):
            assert b"PRIVATE KEY" not in (path.read_bytes() if path.exists() else b""), path


@pytest.fixture()
def old_installation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A var/ as installations before this release left it: everything 0644/0755, the signing key in plain text."""
    previous = os.umask(0o022)
    var_dir = tmp_path / "var"
    monkeypatch.setenv("AWESOMME_VAR_DIR", str(var_dir))
    monkeypatch.setenv("AWESOMME_DATABASE_URL", "")
    monkeypatch.delenv("AWESOMME_KEY_ENCRYPTION_KEY", raising=False)
    settings = load_settings()
    try:
        migrate(settings.db_url)
        pair = new_key_pair()
        engine = engine_for(settings.db_url)
        with engine.begin() as connection:
            connection.execute(
                SigningKey.__table__.insert(),
                {
                    "kid": pair.kid,
                    "private_pem": pair.private_pem,
                    "public_jwk": pair.public_jwk,
                    "created_at": datetime.now(UTC),
                },
            )
        engine.dispose()
        for relative, content in {
            "secrets.env": "AWESOMME_ORTHANC_PASSWORD=x\n",
            "orthanc/storage/0a/1b/0a1b2c3d": "DICM patient data",
            "orthanc/storage/index": "SQLite format 3",
            "cache/series/1.2.3/v1.nii": "a decoded series",
            "log/server.log": "log",
            "tmp/tmpupload123.nii.gz": "a failed upload",
        }.items():
            path = var_dir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        for path in [var_dir, *var_dir.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield settings
    finally:
        os.umask(previous)


def test_start_tightens_an_old_installation_encrypts_its_plain_key_and_says_so(
    old_installation: Settings, probe_dir: Path
) -> None:
    settings = old_installation
    files, directories = _everything_under(settings.var_dir)
    assert len(_readable_by_other_user(files, probe_dir)) == len(files)  # the probe sees the problem first

    previous = os.umask(0o022)
    try:
        report = secure_installation(settings)  # what `awesomme up` (make run) and `awesomme serve` run first
    finally:
        os.umask(previous)
    text = "\n".join(report.lines)
    assert "owner-only" in text and "awesomme.db" in text and "secrets.env" in text, text
    assert "encrypted 1 signing key" in text, text

    files, directories = _everything_under(settings.var_dir)
    assert settings.key_encryption_key_file in files
    assert _loose(files + directories) == []
    assert _readable_by_other_user(files, probe_dir) == []
    database = sqlite_path(settings.db_url)
    assert database is not None
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT kid, private_pem FROM signing_keys").fetchall()
    assert len(rows) == 2  # the old key, encrypted, and a new one that signs from now on
    assert all(value.startswith(ENCRYPTED_KEY_PREFIX) for _, value in rows)
    for path in (database, database.with_name(database.name + "-wal")):  # no copy of the plain key left behind
        assert b"PRIVATE KEY" not in (path.read_bytes() if path.exists() else b""), path

    assert secure_installation(settings).lines == []  # a second start finds nothing to change
