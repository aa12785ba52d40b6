"""Our platform as a benchmark starts it: Orthanc, the migrated database and the server in a work folder of its
own (free loopback ports, SQLite under ``var/``), with a benchmark admin's credentials."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.processes import free_port

__all__ = ["ADMIN", "Platform", "platform"]

ADMIN = ("bench.admin", "bench-admin-password-1")


@dataclass
class Platform:
    settings: Any
    url: str

    def headers(self) -> dict[str, str]:
        form = {"grant_type": "password", "username": ADMIN[0], "password": ADMIN[1]}
        reply = httpx.post(f"{self.url}/api/auth/token", data=form, timeout=60)
        reply.raise_for_status()
        return {"Authorization": f"Bearer {reply.json()['access_token']}"}


@contextmanager
def platform(work: Path, environment: dict[str, str] | None = None) -> Iterator[Platform]:
    """Orthanc, the migrated database and the server in ``work``, with ``environment``'s settings on top."""
    os.environ.update(
        {
            "AWESOMME_VAR_DIR": str(work / "var"),
            "AWESOMME_DATABASE_URL": "",
            "AWESOMME_PORT": str(free_port()),
            "AWESOMME_ORTHANC_URL": f"http://127.0.0.1:{free_port()}",
            **(environment or {}),
        }
    )
    from awesomme.core.config import load_settings
    from awesomme.core.db import forget_engine
    from awesomme.runtime.orthanc import ensure_secrets
    from awesomme.runtime.platform import base_url, start_all, stop_all

    ensure_secrets(load_settings())
    settings = load_settings()
    forget_engine()
    try:
        start_all(settings)
        yield Platform(settings, base_url(settings))
    finally:
        stop_all(settings)
