"""Behind a TLS-terminating reverse proxy: Debian's nginx on loopback, with a certificate this test makes, in front of
the real server, which trusts that proxy's address alone (``AWESOMME_TRUSTED_PROXIES``, set for the test platform).

A browser logs in and opens the viewer over https; links name the https address the client used; the login
throttle and the journal see each client's own address through the proxy; an ``X-Forwarded-For`` sent straight to
the server by anyone else changes nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from awesomme.orthanc.client import OrthancClient
from tests.integration.addresses import client_from, loopback_for
from tests.integration.conftest import (
    PROXY_ADDRESS,
    Account,
    Cohorts,
    attach_to_cohort,
    create_account,
    free_port,
    store_patient,
)
from tests.integration.test_viewer_browser import CHROMIUM, CHROMIUM_FLAGS, TIMEOUT_MS

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass(frozen=True)
class Proxy:
    url: str  # https://127.0.0.1:<port>
    ca: Path  # the certificate clients verify it with


def _certificate(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "proxy.key", directory / "proxy.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def _config(directory: Path, port: int, upstream: str, key: Path, cert: Path) -> Path:
    config = directory / "nginx.conf"
    config.write_text(f"""
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {directory}/body;
  proxy_temp_path {directory}/proxy;
  client_max_body_size 64m;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location / {{
      proxy_pass {upstream};
      proxy_bind {PROXY_ADDRESS};
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto https;
      proxy_read_timeout 300s;
    }}
  }}
}}
""")
    return config


@pytest.fixture(scope="module")
def proxy(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    if not Path(NGINX).is_file():
        pytest.fail("nginx is missing: scripts/install-system-deps.sh --test-tools installs nginx-light")
    directory = tmp_path_factory.mktemp("proxy")
    key, cert = _certificate(directory)
    port = free_port()
    config = _config(directory, port, server_url, key, cert)
    process = subprocess.Popen(
        [NGINX, "-p", str(directory), "-c", str(config), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/api/health", verify=str(cert), timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {process.stderr.read() if process.stderr else ''}")
            time.sleep(0.2)
        yield Proxy(url, cert)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _through(proxy: Proxy, address: str) -> httpx.Client:
    """A client of the proxy connecting from ``address``, verifying the proxy's certificate."""
    transport = httpx.HTTPTransport(local_address=address, verify=str(proxy.ca))
    return httpx.Client(transport=transport, base_url=proxy.url, timeout=60)


def _events(server_url: str, admin: Account, username: str, since: str) -> list[dict]:
    reply = httpx.get(
        f"{server_url}/api/audit",
        params={"user": username, "action": "auth.token", "since": since},
        headers=admin.headers(server_url),
    )
    return list(reply.json())


def test_a_browser_logs_in_and_opens_the_viewer_over_https(proxy: Proxy, cohorts: Cohorts) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            context = browser.new_context(base_url=proxy.url, ignore_https_errors=True)
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.goto("/login?next=/ohif/")
            page.fill("#username", cohorts.alpha_member.username)
            page.fill("#password", cohorts.alpha_member.password)
            with page.expect_navigation():
                page.click("button[type=submit]")
            assert page.url.startswith(f"{proxy.url}/ohif/"), page.url  # not refused as cross-site
            cookie = next(c for c in context.cookies() if c["name"].endswith("session"))
            assert cookie["secure"] and cookie["httpOnly"]
            config = page.request.get("/ohif/app-config.js")
            assert config.status == 200
        finally:
            browser.close()


def test_links_name_the_https_address_the_client_used(
    proxy: Proxy,
    cohorts: Cohorts,
    server_url: str,
    admin: Account,
    orthanc: OrthancClient,
    tmp_path: Path,
) -> None:
    stored = store_patient(orthanc, "osteosarcoma-mr", 6301, tmp_path, shape=(2, 16, 16))
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[stored.patient.study_uid])
    with _through(proxy, loopback_for("proxy.links")) as client:
        token = client.post(
            "/api/auth/token",
            data={"grant_type": "password", **vars(cohorts.alpha_member)},
        ).json()["access_token"]
        found = client.get(
            "/dicom-web/studies",
            params={"StudyInstanceUID": stored.patient.study_uid},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert found.status_code == 200, found.text
    urls = [item["00081190"]["Value"][0] for item in found.json()]
    assert urls == [f"{proxy.url}/dicom-web/studies/{stored.patient.study_uid}"]


def test_the_throttle_and_the_journal_see_each_clients_own_address(
    proxy: Proxy, server_url: str, admin: Account
) -> None:
    account = create_account("proxy.throttled")
    guesser, owner = loopback_for("proxy.guesser"), loopback_for("proxy.owner")
    since = datetime.now(UTC).isoformat()
    wrong = {"grant_type": "password", "username": account.username, "password": "wrong-password-123"}
    right = {"grant_type": "password", "username": account.username, "password": account.password}
    with _through(proxy, guesser) as client:
        answers = [client.post("/api/auth/token", data=wrong).status_code for _ in range(6)]
        assert client.post("/api/auth/token", data=right).status_code == 429  # the guesser's address is refused
    assert answers[:5] == [401] * 5 and answers[5] == 429
    with _through(proxy, owner) as client:  # the same proxy, another client: not refused
        assert client.post("/api/auth/token", data=right).status_code == 200
    sources = {event["source"] for event in _events(server_url, admin, account.username, since)}
    assert sources == {guesser, owner}  # never the proxy's address


def test_a_forged_forwarded_for_from_an_untrusted_address_changes_nothing(
    proxy: Proxy, server_url: str, admin: Account
) -> None:
    account = create_account("proxy.forger")
    forger = loopback_for("proxy.forger")
    since = datetime.now(UTC).isoformat()
    form = {"grant_type": "password", "username": account.username, "password": account.password}
    with client_from(forger) as client:  # straight to the server, pretending to be a proxy
        reply = client.post(f"{server_url}/api/auth/token", data=form, headers={"X-Forwarded-For": "203.0.113.9"})
    assert reply.status_code == 200
    assert [event["source"] for event in _events(server_url, admin, account.username, since)] == [forger]
