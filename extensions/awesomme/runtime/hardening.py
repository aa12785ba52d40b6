"""What every start does before serving: ``var/`` owner-only, signing keys encrypted at rest.

An installation from before these rules had world-readable files under ``var/`` (the database, which held the
signing key in plain text, Orthanc's storage, the series cache, logs). The start routine tightens them, encrypts any
plain-text key, and says what it changed. It refuses to start only when a secret stays readable by others.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from awesomme.core.config import Settings
from awesomme.core.db import engine_for, migrate, sqlite_path
from awesomme.core.security import KeyEncryptionError
from awesomme.services import identity

__all__ = ["OWNER_ONLY_UMASK", "Report", "UnsafeSecret", "encrypt_signing_keys", "secure_installation", "tighten_modes"]

OWNER_ONLY_UMASK = 0o077
SHOWN = 8  # paths named in a report line; the rest are counted


class UnsafeSecret(RuntimeError):
    """A secret is readable by other accounts and its mode cannot be changed: the server must not start."""


@dataclass
class Report:
    """What the start routine changed, one line each (empty: nothing needed changing)."""

    lines: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.lines)


def _is_secret(path: Path, settings: Settings) -> bool:
    """Files whose exposure gives away the platform: credentials, keys and the database (with its WAL)."""
    database = sqlite_path(settings.db_url)
    if database is not None and path.name.startswith(database.name) and path.parent == database.parent:
        return True
    secrets = {
        settings.secrets_file,
        settings.var_dir / "orthanc" / "orthanc.json",
        settings.var_dir / "admin-password",
    }
    key_dirs = (settings.key_encryption_key_file.parent, settings.var_dir / "audit")  # signing keys, journal anchor
    return path in secrets or any(directory in path.parents for directory in key_dirs)


def _tighten(path: Path, changed: list[Path], failed: list[tuple[Path, OSError]]) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:  # gone meanwhile (a temporary file)
        return
    if stat.S_ISLNK(mode) or not mode & 0o077:
        return  # a link's own mode means nothing; what it points to outside var/ is not ours to change
    try:
        os.chmod(path, stat.S_IMODE(mode) & ~0o077, follow_symlinks=False)
    except NotImplementedError:  # platforms where a mode cannot be set without following links
        os.chmod(path, stat.S_IMODE(mode) & ~0o077)
    except OSError as error:
        failed.append((path, error))
        return
    changed.append(path)


def tighten_modes(paths: list[Path]) -> tuple[list[Path], list[tuple[Path, OSError]]]:
    """Remove group and other bits from ``paths`` and, for directories, from everything under them (files become
    0600, directories 0700, an owner's execute bit is kept). Returns what changed and what could not be."""
    changed: list[Path] = []
    failed: list[tuple[Path, OSError]] = []
    for root in paths:
        if not root.exists():
            continue
        _tighten(root, changed, failed)
        if not root.is_dir() or root.is_symlink():
            continue
        for directory, subdirectories, files in os.walk(root, followlinks=False):
            for name in [*subdirectories, *files]:
                _tighten(Path(directory) / name, changed, failed)
    return changed, failed


def _named(paths: list[Path], base: Path) -> str:
    shown = [str(p.relative_to(base)) if base in p.parents else str(p) for p in paths[:SHOWN]]
    more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
    return ", ".join(shown) + more


def _scrub_database(engine: Engine) -> None:
    """Rewrite the database so that a plain-text key no longer lies in a free page or the write-ahead log."""
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        if engine.dialect.name == "sqlite":
            connection.execute(text("VACUUM"))
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        elif engine.dialect.name == "postgresql":
            connection.execute(text("VACUUM FULL signing_keys"))


def encrypt_signing_keys(settings: Settings) -> list[str]:
    """Encrypt signing keys stored in plain text, then sign with a new key from now on (the old ones were readable
    in the database: they stay published only until the tokens they signed expire). Returns the migrated kids."""
    engine = engine_for(settings.db_url)
    try:
        with Session(engine) as session:
            try:
                migrated = identity.encrypt_plain_signing_keys(session, settings)
            except KeyEncryptionError as error:
                raise RuntimeError(
                    f"{error}: start with the AWESOMME_KEY_ENCRYPTION_KEY or the {settings.key_encryption_key_file} "
                    "the keys were encrypted with (if it is lost, delete the rows of signing_keys: logins make a new "
                    "key and everyone logs in again)"
                ) from error
            if migrated:
                identity.rotate_keys(session, settings)
            session.commit()
        if migrated:
            _scrub_database(engine)
    finally:
        engine.dispose()
    return migrated


def secure_installation(settings: Settings) -> Report:
    """Owner-only ``var/`` (and a SQLite database elsewhere), signing keys encrypted; raises ``UnsafeSecret``."""
    os.umask(OWNER_ONLY_UMASK)  # this process and every child from here on
    report = Report()
    var_dir = settings.var_dir
    var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    roots = [var_dir]
    database = sqlite_path(settings.db_url)
    if database is not None and var_dir not in database.parents:
        roots += [database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
    changed, failed = tighten_modes(roots)
    secrets = [(path, error) for path, error in failed if _is_secret(path, settings)]
    if secrets:
        path, error = secrets[0]
        raise UnsafeSecret(
            f"{path} is readable by other accounts and its mode cannot be changed ({error.strerror}): "
            "make it owner-only (chmod 600) or move it away, then start again"
        )
    if changed:
        files = [p for p in changed if not p.is_dir()]
        directories = [p for p in changed if p.is_dir()]
        report.lines.append(
            f"made {len(files)} files (0600) and {len(directories)} directories (0700) owner-only; other accounts "
            f"could read them: {_named(changed, var_dir)}"
        )
    for path, error in failed:
        report.lines.append(f"WARNING: {path} stays readable by other accounts ({error.strerror})")
    key_file_existed = settings.key_encryption_key_file.is_file() or bool(settings.key_encryption_key.strip())
    migrate(settings.db_url)
    migrated = encrypt_signing_keys(settings)
    if migrated:
        where = (
            "AWESOMME_KEY_ENCRYPTION_KEY"
            if settings.key_encryption_key.strip()
            else f"the key in {settings.key_encryption_key_file}"
        )
        report.lines.append(
            f"encrypted {len(migrated)} signing key(s) stored in plain text ({', '.join(migrated)}) with {where}; "
            "a new signing key signs from now on"
        )
        if not key_file_existed:
            report.lines.append(f"created the key-encryption key {settings.key_encryption_key_file} (0600)")
    return report
