"""Bring the whole platform up (Orthanc, database, server, demo data) and down again, idempotently."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

import httpx

from awesomme.core.config import Settings
from awesomme.runtime.hardening import secure_installation
from awesomme.runtime.orthanc import ORTHANC_BINARY, orthanc_config, start_orthanc, stop_orthanc
from awesomme.runtime.processes import running_pid, start_background, stop_by_pidfile, wait_until

__all__ = ["SERVER_COMMAND", "Started", "base_url", "health_ok", "start_all", "start_server", "stop_all", "stop_server"]

SERVER_COMMAND = "awesomme.cli serve"
SERVER_START_TIMEOUT_S = 300


@dataclass(frozen=True)
class Started:
    orthanc_pid: int
    server_pid: int
    changes: list[str] = field(default_factory=list)  # what the start routine changed in the installation


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


def refresh_orthanc_config(settings: Settings) -> str | None:
    """Orthanc's configuration is regenerated on every start: when the file differs from what this version writes
    (an older installation), a running Orthanc is stopped so that it starts again with the new one."""
    base = settings.var_dir / "orthanc"
    config_path = base / "orthanc.json"
    wanted = orthanc_config(settings, settings.orthanc_username, settings.orthanc_password, base / "storage")
    try:
        current = json.loads(config_path.read_text())
    except (OSError, ValueError):
        current = None
    if current is None or current == wanted:
        return None  # a first start, or nothing to change (start_orthanc writes the file whenever it starts)
    if not isinstance(current, dict):
        current = {}
    keys = sorted(k for k in {*wanted, *current} if wanted.get(k) != current.get(k))
    restarted = stop_orthanc(settings) if running_pid(base / "orthanc.pid", ORTHANC_BINARY) else False
    return f"Orthanc's configuration regenerated ({', '.join(keys)} changed)" + (
        "; Orthanc restarted with it" if restarted else ""
    )


def start_all(settings: Settings) -> Started:
    """Secure the installation (modes, keys at rest, Orthanc's configuration), then Orthanc and the server."""
    changes = secure_installation(settings).lines
    orthanc_change = refresh_orthanc_config(settings)
    if orthanc_change:
        changes.append(orthanc_change)
    orthanc_pid = start_orthanc(settings)
    return Started(orthanc_pid, start_server(settings), changes)


def stop_server(settings: Settings) -> bool:
    return stop_by_pidfile(settings.var_dir / "server.pid", SERVER_COMMAND)


def stop_all(settings: Settings) -> list[str]:
    stopped = []
    if stop_server(settings):
        stopped.append("server")
    if stop_orthanc(settings):
        stopped.append("Orthanc")
    return stopped
