"""The server as a newcomer meets it: health, MONAI Label's /info, and a clear 503 when Orthanc is gone."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from awesomme import __version__
from awesomme.core.config import Settings
from awesomme.runtime.processes import running_pid, start_background, stop_by_pidfile, wait_until
from tests.integration.conftest import free_port


def test_health_reports_version_and_every_check(http: httpx.Client) -> None:
    reply = http.get("/api/health")
    assert reply.status_code == 200
    body = reply.json()
    assert body["version"] == __version__
    assert body["checks"] == {"database": True, "orthanc": True, "app": True}


def test_info_lists_the_awesomme_app_and_its_datastore(http: httpx.Client) -> None:
    info = http.get("/info/").json()
    assert info["name"] == "AWESOMME"
    assert info["version"] == __version__
    assert {"first", "random"} <= set(info["strategies"])
    assert set(info["datastore"]) >= {"total", "completed", "label_tags"}


def test_server_binds_loopback_only(platform: Settings) -> None:
    connections = Path("/proc/net/tcp").read_text().splitlines()[1:]
    listening = [line.split()[1] for line in connections if line.split()[3] == "0A"]
    ours = [address for address in listening if int(address.split(":")[1], 16) == platform.port]
    assert ours == ["0100007F:" + f"{platform.port:04X}"]


def test_health_is_503_naming_orthanc_when_orthanc_is_unreachable(platform: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ)
    env.update(
        AWESOMME_VAR_DIR=str(tmp_path),
        AWESOMME_PORT=str(port),
        AWESOMME_ORTHANC_URL=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        AWESOMME_DATABASE_URL=platform.db_url,
    )
    # The same database: the signing keys in it are encrypted with the platform's key-encryption key.
    env["AWESOMME_KEY_ENCRYPTION_KEY"] = ""
    key_file = platform.key_encryption_key_file
    (tmp_path / "keys").mkdir(mode=0o700)
    (tmp_path / "keys" / key_file.name).write_bytes(key_file.read_bytes())
    (tmp_path / "keys" / key_file.name).chmod(0o600)
    pid_file = tmp_path / "server.pid"
    start_background([sys.executable, "-m", "awesomme.cli", "serve"], pid_file, tmp_path / "server.log", env=env)
    url = f"http://127.0.0.1:{port}/api/health"
    replies: list[httpx.Response] = []

    def answered() -> bool:
        try:
            replies.append(httpx.get(url, timeout=10))
        except httpx.HTTPError:
            assert running_pid(pid_file, "awesomme.cli serve"), (tmp_path / "server.log").read_text()[-2000:]
            return False
        return True

    try:
        wait_until(answered, 180, "the second server")
    finally:
        stop_by_pidfile(pid_file, "awesomme.cli serve")
    reply = replies[-1]
    assert reply.status_code == 503
    assert reply.json()["checks"]["orthanc"] is False
    assert "orthanc" in reply.json()["detail"]


def test_orthanc_answers_only_with_the_private_credentials(platform: Settings) -> None:
    url = platform.orthanc_url + "/system"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, auth=("orthanc", "orthanc"), timeout=10).status_code == 401
    assert httpx.get(url, auth=(platform.orthanc_username, platform.orthanc_password), timeout=10).status_code == 200


def test_cors_allows_only_the_platforms_own_origin(http: httpx.Client, server_url: str) -> None:
    own = http.get("/info/", headers={"Origin": server_url})
    assert own.headers.get("access-control-allow-origin") == server_url
    foreign = http.get("/info/", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in foreign.headers
