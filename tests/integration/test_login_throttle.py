"""Failed logins are throttled per username and per client address, on every login entry point.

The server runs with the default limits (5 failures per user, 20 per address, in 300 s). Each test uses its own
usernames and its own client address (``X-Forwarded-For``, trusted from loopback as from a local TLS proxy), so
what it fills refuses no other test.
"""

from __future__ import annotations

import httpx

from tests.integration.conftest import create_account

PER_USER = 5
PER_ADDRESS = 20


def _token(
    server_url: str, username: str, password: str, address: str, path: str = "/api/auth/token"
) -> httpx.Response:
    form = {"grant_type": "password", "username": username, "password": password}
    return httpx.post(f"{server_url}{path}", data=form, headers={"X-Forwarded-For": address}, timeout=60)


def test_a_locked_out_name_is_refused_even_with_the_right_password(server_url: str) -> None:
    account = create_account("throttled.user")
    for attempt in range(PER_USER):
        # From ever-new addresses: only the name's own count can stop this.
        path = "/auth/token" if attempt % 2 else "/api/auth/token"
        assert _token(server_url, account.username, "wrong", f"203.0.113.{attempt}", path).status_code == 401
    for path in ("/api/auth/token", "/auth/token"):
        refused = _token(server_url, account.username, account.password, "203.0.113.100", path)
        assert refused.status_code == 429, refused.text
        assert 0 < int(refused.headers["retry-after"]) <= 300
    session = httpx.post(
        f"{server_url}/api/auth/session",
        data={"username": account.username, "password": account.password},
        headers={"X-Forwarded-For": "203.0.113.101"},
    )
    assert session.status_code == 429 and "set-cookie" not in session.headers
    # Another name is not locked, and a success never counts.
    other = create_account("throttled.neighbour")
    for _ in range(PER_USER + 1):
        assert _token(server_url, other.username, other.password, "203.0.113.102").status_code == 200


def test_failures_from_one_address_lock_every_name_there(server_url: str) -> None:
    account = create_account("throttled.bystander")
    address = "203.0.113.200"
    for attempt in range(PER_ADDRESS):
        assert _token(server_url, f"nobody.{attempt}", "guess", address).status_code == 401
    refused = _token(server_url, account.username, account.password, address)
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert _token(server_url, account.username, account.password, "203.0.113.201").status_code == 200
