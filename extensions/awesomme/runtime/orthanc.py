"""Orthanc from the Debian package, configured privately under ``var/orthanc/``.

Orthanc 1.10 cannot bind to one address: ``RemoteAccessAllowed: false`` refuses other hosts, HTTP basic
authentication with generated credentials keeps local users out, and the DICOM port stays off. The configuration
is written again at every start, so an existing installation gets the current settings (stored instances are never
overwritten, error texts stay inside).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import httpx

from awesomme.core.config import Settings
from awesomme.runtime.processes import running_pid, start_background, stop_by_pidfile, wait_until

__all__ = ["ORTHANC_BINARY", "ensure_secrets", "orthanc_answers", "orthanc_config", "start_orthanc", "stop_orthanc"]

ORTHANC_BINARY = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def ensure_secrets(settings: Settings) -> dict[str, str]:
    """Create ``var/secrets.env`` (0600) with random Orthanc credentials once; return its values."""
    path = settings.secrets_file
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        values = {
            "AWESOMME_ORTHANC_USERNAME": "awesomme-" + secrets.token_hex(4),
            "AWESOMME_ORTHANC_PASSWORD": secrets.token_urlsafe(32),
        }
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
        with os.fdopen(descriptor, "w", encoding="utf-8") as secrets_file:
            secrets_file.writelines(f"{key}={value}\n" for key, value in values.items())
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def orthanc_config(settings: Settings, username: str, password: str, storage_dir: Path) -> dict:
    port = httpx.URL(settings.orthanc_url).port or 8042
    return {
        "Name": "AWESOMME",
        "StorageDirectory": str(storage_dir),
        "IndexDirectory": str(storage_dir),
        "HttpPort": port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {username: password},
        "DicomServerEnabled": settings.orthanc_dicom_port > 0,
        "DicomPort": settings.orthanc_dicom_port or 4242,
        "HttpDescribeErrors": False,  # its error texts name internals; the platform answers in its own words
        "OverwriteInstances": False,  # a STOW never replaces a stored instance (the platform answers 409)
        "StableAge": 5,
        "SaveJobs": False,
        "ExecuteLuaEnabled": False,
        "RestApiWriteToFileSystemEnabled": False,
        "HttpCompressionEnabled": False,
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Ssl": False},
    }


def write_config(settings: Settings, config_path: Path, storage_dir: Path) -> Path:
    config = orthanc_config(settings, settings.orthanc_username, settings.orthanc_password, storage_dir)
    config_path.parent.mkdir(parents=True, exist_ok=True)
    storage_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(config, indent=2))
    config_path.chmod(0o600)
    return config_path


def orthanc_answers(settings: Settings) -> bool:
    try:
        reply = httpx.get(
            settings.orthanc_url.rstrip("/") + "/system",
            auth=(settings.orthanc_username, settings.orthanc_password),
            timeout=2.0,
        )
    except httpx.HTTPError:
        return False
    return reply.status_code == 200


def start_orthanc(settings: Settings) -> int:
    """Start Orthanc in the background unless ours already runs; returns its pid."""
    base = settings.var_dir / "orthanc"
    pid_file = base / "orthanc.pid"
    pid = running_pid(pid_file, ORTHANC_BINARY)
    if pid is not None:
        return pid
    if shutil.which(ORTHANC_BINARY) is None:
        raise RuntimeError(f"{ORTHANC_BINARY} is missing: install the Debian packages orthanc and orthanc-dicomweb")
    config = write_config(settings, base / "orthanc.json", base / "storage")
    pid = start_background([ORTHANC_BINARY, str(config)], pid_file, base / "orthanc.log")
    wait_until(lambda: orthanc_answers(settings) or running_pid(pid_file, ORTHANC_BINARY) is None, 30, "Orthanc")
    if running_pid(pid_file, ORTHANC_BINARY) is None:
        raise RuntimeError(f"Orthanc exited at start (port taken?): see {base / 'orthanc.log'}")
    return pid


def stop_orthanc(settings: Settings) -> bool:
    return stop_by_pidfile(settings.var_dir / "orthanc" / "orthanc.pid", ORTHANC_BINARY)
