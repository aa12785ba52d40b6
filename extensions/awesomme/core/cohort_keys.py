"""Per-cohort pseudonymisation keys: 256 random bits per cohort, in ``var/keys/cohorts/<id>.key`` (mode 0600, its
folder 0700), made on first use, never in the database.

Whoever holds a cohort's key can confirm a guessed identity (a medical record number space is small), so the files
are owner-only like the other secrets. Replacing or losing a key breaks longitudinal linking: the same patient
imported again gets other UIDs, another pseudonym and another date shift.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from awesomme.core.config import Settings

__all__ = ["KEY_BYTES", "cohort_key", "cohort_key_file"]

KEY_BYTES = 32


def cohort_key_file(settings: Settings, cohort_id: int) -> Path:
    return settings.key_encryption_key_file.parent / "cohorts" / f"{int(cohort_id)}.key"


def cohort_key(settings: Settings, cohort_id: int) -> bytes:
    """The cohort's key, created (exclusively, 0600) when it has none yet."""
    path = cohort_key_file(settings, cohort_id)
    if not path.exists():
        path.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile: use theirs
            pass
        else:
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(KEY_BYTES) + "\n")
    key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    if len(key) != KEY_BYTES:
        raise ValueError(f"the pseudonymisation key of cohort {cohort_id} ({path}) is not {KEY_BYTES} bytes")
    return key
