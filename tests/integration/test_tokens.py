"""Tokens that must not pass: tampered, expired, alg none, unknown key; and key rotation keeps old tokens valid."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import timedelta

import httpx
from sqlalchemy import select

from awesomme.core.config import get_settings
from awesomme.core.db import session_scope
from awesomme.core.security import KeyPair, issue_access_token, new_key_pair
from awesomme.models import User
from awesomme.services import identity
from tests.integration.conftest import Account, Cohorts, create_account


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _parts(token: str) -> tuple[dict, dict, str]:
    header, payload, signature = token.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return decode(header), decode(payload), signature


def _status(server_url: str, token: str) -> int:
    return httpx.get(f"{server_url}/info/", headers={"Authorization": f"Bearer {token}"}).status_code


def _newest_key() -> KeyPair:
    with session_scope() as session:
        return identity.signing_key(session, get_settings())  # decrypted with the key-encryption key


def _user(username: str) -> User:
    with session_scope() as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None
        return user


def test_forged_tokens_get_401(server_url: str, cohorts: Cohorts) -> None:
    member = cohorts.alpha_member
    good = member.token(server_url)["access_token"]
    assert _status(server_url, good) == 200
    header, payload, signature = _parts(good)

    elevated = f"{_b64(header)}.{_b64({**payload, 'sub': 'platform.admin', 'uid': 1})}.{signature}"
    assert _status(server_url, elevated) == 401
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': header['kid']})}.{_b64(payload)}."
    assert _status(server_url, unsigned) == 401
    hmac = f"{_b64({**header, 'alg': 'HS256'})}.{_b64(payload)}.{signature}"
    assert _status(server_url, hmac) == 401

    user = _user(member.username)
    stranger, _ = issue_access_token(
        new_key_pair(), "awesomme", user.username, user.id, user.token_version, timedelta(minutes=5)
    )
    assert _status(server_url, stranger) == 401  # a well-formed token signed by a key we never published
    expired, _ = issue_access_token(
        _newest_key(), "awesomme", user.username, user.id, user.token_version, timedelta(seconds=-5)
    )
    assert _status(server_url, expired) == 401
    assert _status(server_url, "not-a-token") == 401


def test_key_rotation_keeps_earlier_tokens_valid(server_url: str, admin: Account) -> None:
    before = admin.token(server_url)["access_token"]
    old_kid = _parts(before)[0]["kid"]
    rotated = subprocess.run(
        [sys.executable, "-m", "awesomme.cli", "keys", "rotate"], capture_output=True, text=True, check=False
    )
    assert rotated.returncode == 0, rotated.stderr
    after = admin.token(server_url)["access_token"]
    assert _parts(after)[0]["kid"] != old_kid
    assert _status(server_url, before) == 200 and _status(server_url, after) == 200
    kids = {key["kid"] for key in httpx.get(f"{server_url}/api/auth/jwks").json()["keys"]}
    assert {old_kid, _parts(after)[0]["kid"]} <= kids


def test_disabling_a_user_ends_their_tokens(server_url: str, admin: Account) -> None:
    account = create_account("short.lived")
    token = account.token(server_url)["access_token"]
    assert _status(server_url, token) == 200
    disabled = subprocess.run(
        [sys.executable, "-m", "awesomme.cli", "user", "disable", "--username", account.username],
        capture_output=True,
        text=True,
        check=False,
    )
    assert disabled.returncode == 0, disabled.stderr
    assert _status(server_url, token) == 401


def _refresh(server_url: str, refresh_token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return httpx.post(f"{server_url}/api/auth/token", data=form, timeout=60)


def test_logout_without_the_refresh_token_ends_the_whole_refresh_family(server_url: str) -> None:
    account = create_account("family.logout")
    first = account.token(server_url)
    second = _refresh(server_url, first["refresh_token"]).json()  # rotated: same session
    elsewhere = account.token(server_url)  # another login of the same user
    bearer = {"Authorization": f"Bearer {second['access_token']}"}
    assert httpx.post(f"{server_url}/api/auth/logout", headers=bearer).status_code == 200  # no refresh token sent
    assert _refresh(server_url, second["refresh_token"]).status_code == 401
    assert _status(server_url, first["access_token"]) == 401  # the session's earlier access token ends too
    assert _status(server_url, elsewhere["access_token"]) == 200  # another session goes on
    assert _refresh(server_url, elsewhere["refresh_token"]).status_code == 200


def test_replayed_refresh_token_revokes_its_family_successors_included(server_url: str) -> None:
    account = create_account("family.replay")
    stolen = account.token(server_url)
    successor = _refresh(server_url, stolen["refresh_token"])
    assert successor.status_code == 200
    replay = _refresh(server_url, stolen["refresh_token"])
    assert replay.status_code == 401 and "already used" in replay.text
    assert _refresh(server_url, successor.json()["refresh_token"]).status_code == 401  # the successor is revoked
    assert _status(server_url, successor.json()["access_token"]) == 401
    assert account.token(server_url)["access_token"]  # logging in again starts a new family


def test_bearer_token_with_null_or_list_header_or_uid_beyond_64_bits_is_401_not_500(
    server_url: str, cohorts: Cohorts
) -> None:
    good = cohorts.alpha_member.token(server_url)["access_token"]
    _, payload, signature = good.split(".")
    raw = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()  # noqa: E731
    tokens = [f"{raw(h)}.{payload}.{signature}" for h in (b"null", b"[]", b'["RS256"]', b"7", b"{", b"\xff")]
    tokens += ["%%%.%%%.%%%", "a.b", "...", "a.b.c.d"]
    user = _user(cohorts.alpha_member.username)
    for uid in (2**64, 2**63):  # a properly signed token naming an id no SQL integer holds
        huge, _ = issue_access_token(
            _newest_key(), "awesomme", user.username, uid, user.token_version, timedelta(minutes=5)
        )
        tokens.append(huge)
    for token in tokens:
        headers = {"Authorization": f"Bearer {token}"}
        for path in ("/info/", "/api/users/me", "/dicom-web/studies"):
            status = httpx.get(f"{server_url}{path}", headers=headers, timeout=60).status_code
            assert status == 401, (path, token[:40], status)
        assert httpx.post(f"{server_url}/api/auth/logout", headers=headers, timeout=60).status_code == 401
