"""Bring the whole platform up (Orthanc, database, server, demo data) and down again, idempotently."""

from __future__ import annotations

import sys
from dataclasses import dataclass

import httpx

from awesomme.core.config import Settings
from awesomme.core.db import migrate
from awesomme.runtime.orthanc import start_orthanc, stop_orthanc
from awesomme.runtime.processes import running_pid, start_background, stop_by_pidfile, wait_until

__all__ = ["SERVER_COMMAND", "Started", "base_url", "health_ok", "start_all", "start_server", "stop_all", "stop_server"]

SERVER_COMMAND = "awesomme.cli serve"
SERVER_START_TIMEOUT_S = 300


@dataclass(frozen=True)
class Started:
    orthanc_pid: int
    server_pid: int


def base_url(settings: Settings) -> str:
    return f"http://{settings.host}:{settings.port}"


def health_ok(settings: Settings) -> bool:
    try:
        return httpx.get(base_url(settings) + "/api/health", timeout=5.0).status_code == 200
    except httpx.HTTPError:
        return False


def start_server(settings: Settings) -> int:
    pid_file = settings.var_dir / "server.pid"
    pid = running_pid(pid_file, SERVER_COMMAND)
    if pid is None:
        argv = [sys.executable, "-m", "awesomme.cli", "serve"]
        pid = start_background(argv, pid_file, settings.var_dir / "log" / "server.log", cwd=settings.var_dir)
    wait_until(
        lambda: health_ok(settings) or running_pid(pid_file, SERVER_COMMAND) is None,
        SERVER_START_TIMEOUT_S,
        "the platform server",
        interval_s=0.5,
    )
    if running_pid(pid_file, SERVER_COMMAND) is None:
        raise RuntimeError(f"the server exited at start: see {settings.var_dir / 'log' / 'server.log'}")
    return pid


def start_all(settings: Settings) -> Started:
    orthanc_pid = start_orthanc(settings)
    migrate(settings.db_url)
    return Started(orthanc_pid, start_server(settings))


def stop_server(settings: Settings) -> bool:
    return stop_by_pidfile(settings.var_dir / "server.pid", SERVER_COMMAND)


def stop_all(settings: Settings) -> list[str]:
    stopped = []
    if stop_server(settings):
        stopped.append("server")
    if stop_orthanc(settings):
        stopped.append("Orthanc")
    return stopped
