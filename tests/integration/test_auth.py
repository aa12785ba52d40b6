"""Accounts and tokens against the real server: OAuth2 password and refresh grants, logout, JWKS, demo admin."""

from __future__ import annotations

import stat
import subprocess
import sys

import httpx
import pytest

from awesomme.core.config import Settings
from awesomme.seeding import DEMO_ADMIN, ensure_demo_admin

PASSWORD = "integration-password-1"


@pytest.fixture(scope="module")
def member(platform: Settings) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "awesomme.cli", "user", "create", "--username", "member.one", "--password-stdin"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return "member.one"


def _token(http: httpx.Client, username: str, password: str) -> httpx.Response:
    return http.post("/api/auth/token", data={"grant_type": "password", "username": username, "password": password})


def test_password_grant_refresh_logout(anonymous: httpx.Client, member: str) -> None:
    assert _token(anonymous, member, "not the password").status_code == 401
    assert _token(anonymous, "no-such-user", PASSWORD).status_code == 401
    reply = _token(anonymous, member, PASSWORD)
    assert reply.status_code == 200
    tokens = reply.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] > 0

    keys = anonymous.get("/api/auth/jwks").json()["keys"]
    assert keys and all(key["kty"] == "RSA" and key["alg"] == "RS256" and "d" not in key for key in keys)

    renewed = anonymous.post(
        "/api/auth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert renewed.status_code == 200
    spent = anonymous.post(
        "/api/auth/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert spent.status_code == 401
    # The replay ended the session: the renewed pair is revoked too (refresh families).
    assert (
        anonymous.get("/info/", headers={"Authorization": f"Bearer {renewed.json()['access_token']}"}).status_code
        == 401
    )

    access = _token(anonymous, member, PASSWORD).json()["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    assert anonymous.post("/api/auth/logout", headers=headers).status_code == 200
    assert anonymous.post("/api/auth/logout", headers=headers).status_code == 401  # revoked
    assert anonymous.post("/api/auth/logout").status_code == 401
    assert anonymous.post("/api/auth/token", data={"grant_type": "client_credentials"}).status_code == 422


def test_the_demo_admin_gets_a_private_generated_password(platform: Settings, http: httpx.Client) -> None:
    password_file = ensure_demo_admin(platform)
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    password = password_file.read_text().strip()
    assert len(password) >= 20
    assert _token(http, DEMO_ADMIN, password).status_code == 200
    assert ensure_demo_admin(platform) == password_file and password_file.read_text().strip() == password
