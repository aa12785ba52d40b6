"""Failed logins are throttled on every login entry point, in the database, address before account.

The server runs with the default limits (5 failures per username from one address, 20 per address, 30 per
username from all addresses, in 300 s) and trusts no ``X-Forwarded-For``. Each test uses its own usernames and
connects from loopback addresses of its own (``tests.integration.addresses``), so what it fills refuses no other
test.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from awesomme.core.config import get_settings
from awesomme.core.db import session_scope
from awesomme.models import FailedAttempt
from tests.integration.addresses import client_from, loopback_for, post_from
from tests.integration.conftest import Account, create_account


def _token(
    server_url: str,
    username: str,
    password: str,
    address: str,
    path: str = "/api/auth/token",
    forwarded_for: str | None = None,
) -> httpx.Response:
    form = {"grant_type": "password", "username": username, "password": password}
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return post_from(address, f"{server_url}{path}", data=form, headers=headers)


def test_x_forwarded_for_from_loopback_moves_neither_the_throttle_nor_the_journal(
    server_url: str, admin: Account
) -> None:
    # From 127.0.0.1, which uvicorn trusts by default: one failure only (127.0.0.1 is every other test's address).
    account = create_account("forwarded.user")
    since = datetime.now(UTC).isoformat()
    form = {"grant_type": "password", "username": account.username, "password": "wrong"}
    reply = httpx.post(f"{server_url}/api/auth/token", data=form, headers={"X-Forwarded-For": "203.0.113.77"})
    assert reply.status_code == 401, reply.text
    with session_scope() as session:
        counted = session.scalars(select(FailedAttempt.address).where(FailedAttempt.subject == account.username))
        assert list(counted) == ["127.0.0.1"]
    events = httpx.get(
        f"{server_url}/api/audit",
        params={"user": account.username, "action": "auth.token", "since": since},
        headers=admin.headers(server_url),
    ).json()
    assert [event["source"] for event in events] == ["127.0.0.1"]


def test_a_local_client_cannot_choose_its_address_with_x_forwarded_for(server_url: str, admin: Account) -> None:
    account = create_account("forwarding.user")
    address = loopback_for("forwarding.user")
    since = datetime.now(UTC).isoformat()
    per_pair = get_settings().login_failures_per_user
    for attempt in range(per_pair):  # a new "address" each time, if the header counted
        reply = _token(server_url, account.username, "wrong", address, forwarded_for=f"203.0.113.{attempt}")
        assert reply.status_code == 401, reply.text
    refused = _token(server_url, account.username, account.password, address, forwarded_for="203.0.113.250")
    assert refused.status_code == 429, refused.text
    # The journal names the TCP peer, never what the client wrote.
    events = httpx.get(
        f"{server_url}/api/audit",
        params={"user": account.username, "action": "auth.token", "since": since},
        headers=admin.headers(server_url),
    ).json()
    assert len(events) == per_pair + 1 and {event["source"] for event in events} == {address}


def test_fifteen_parallel_wrong_guesses_evaluate_at_most_the_limit(server_url: str) -> None:
    account = create_account("raced.user")
    address = loopback_for("raced.user")
    with ThreadPoolExecutor(15) as pool:
        codes = list(pool.map(lambda _: _token(server_url, account.username, "guess", address).status_code, range(15)))
    per_pair = get_settings().login_failures_per_user
    assert sorted(codes) == [401] * per_pair + [429] * (15 - per_pair), codes


def test_wrong_guesses_from_one_address_do_not_lock_the_account_elsewhere(server_url: str) -> None:
    account = create_account("guessed.admin", admin=True)
    guesser = loopback_for("guessed.admin guesser")
    for _ in range(get_settings().login_failures_per_user):
        assert _token(server_url, account.username, "guess", guesser).status_code == 401
    for path in ("/api/auth/token", "/auth/token"):  # MONAI Label's entry point counts too
        refused = _token(server_url, account.username, account.password, guesser, path)
        assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 300
    # The real admin, from their own address, on every entry point.
    owner = loopback_for("guessed.admin owner")
    assert _token(server_url, account.username, account.password, owner).status_code == 200
    assert _token(server_url, account.username, account.password, owner, "/auth/token").status_code == 200
    with client_from(owner) as browser:
        form = {"username": account.username, "password": account.password}
        assert browser.post(f"{server_url}/api/auth/session", data=form).status_code == 200


def test_guesses_from_many_addresses_lock_the_account_even_with_the_right_password(server_url: str) -> None:
    settings = get_settings()
    account = create_account("distributed.target")
    per_pair, per_account = settings.login_failures_per_user, settings.login_failures_per_account
    addresses = [loopback_for(f"distributed.target {n}") for n in range(-(-per_account // per_pair))]
    failures = [address for address in addresses for _ in range(per_pair)][:per_account]
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda a: _token(server_url, account.username, "guess", a).status_code, failures))
    assert codes == [401] * per_account
    fresh = loopback_for("distributed.target owner")
    for path in ("/api/auth/token", "/auth/token"):
        refused = _token(server_url, account.username, account.password, fresh, path)
        assert refused.status_code == 429 and "retry-after" in refused.headers
    session = post_from(
        fresh, f"{server_url}/api/auth/session", data={"username": account.username, "password": account.password}
    )
    assert session.status_code == 429 and "set-cookie" not in session.headers
    # Another name is not locked, and a success never counts.
    other = create_account("distributed.neighbour")
    for _ in range(per_pair + 1):
        assert _token(server_url, other.username, other.password, fresh).status_code == 200


def test_failures_from_one_address_lock_every_name_there(server_url: str) -> None:
    account = create_account("throttled.bystander")
    address = loopback_for("throttled.bystander guesser")
    for attempt in range(get_settings().login_failures_per_address):
        assert _token(server_url, f"nobody.{attempt}", "guess", address).status_code == 401
    refused = _token(server_url, account.username, account.password, address)
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert _token(server_url, account.username, account.password, loopback_for("bystander")).status_code == 200
