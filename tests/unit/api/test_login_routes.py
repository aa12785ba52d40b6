"""Login entry points on a small app (our auth routers behind the access middleware), with a low throttle."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from awesomme.api.access import SESSION_COOKIE, AccessMiddleware
from awesomme.api.routes import auth, invites, login, monailabel_auth, users
from awesomme.api.routes.login import DEFAULT_NEXT, safe_next
from awesomme.core.config import get_settings
from awesomme.core.db import forget_engine, migrate, session_scope
from awesomme.core.errors import AwesommeError, TooManyRequests
from awesomme.services import identity

PASSWORD = "correct-horse-battery"


async def _error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AwesommeError)
    headers = {"Retry-After": str(error.retry_after_s)} if isinstance(error, TooManyRequests) else None
    return JSONResponse({"detail": str(error)}, status_code=error.status_code, headers=headers)


@pytest.fixture()
def client(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    for name in [name for name in os.environ if name.startswith("AWESOMME_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWESOMME_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("AWESOMME_DATABASE_URL", db_url)
    monkeypatch.setenv("AWESOMME_LOGIN_FAILURES_PER_USER", "2")
    monkeypatch.setenv("AWESOMME_LOGIN_FAILURES_PER_ADDRESS", "4")
    forget_engine()
    auth.login_throttle.cache_clear()
    migrate()
    with session_scope() as session:
        identity.create_user(session, get_settings(), "alice", PASSWORD)
        identity.create_user(session, get_settings(), "bob", PASSWORD)
    app = FastAPI()
    for module in (auth, users, invites):
        app.include_router(module.router, prefix="/api")
    app.include_router(monailabel_auth.router)
    app.include_router(login.router)
    app.add_exception_handler(AwesommeError, _error)
    app.add_middleware(AccessMiddleware)
    try:
        with TestClient(app) as test_client:
            yield test_client
    finally:
        auth.login_throttle.cache_clear()
        forget_engine()


def _token(client: TestClient, username: str, password: str, path: str = "/api/auth/token") -> int:
    form = {"grant_type": "password", "username": username, "password": password}
    return client.post(path, data=form).status_code


def _cookie_flags(header: str) -> set[str]:
    return {part.strip().lower() for part in header.split(";")[1:]}


@pytest.mark.parametrize(
    ("target", "kept"),
    [
        ("/ohif/viewer?StudyInstanceUIDs=1.2.3", True),
        ("/api/users/me", True),
        ("//evil.example/", False),
        ("/\\evil.example", False),
        ("/\t/evil.example", False),
        ("https://evil.example/", False),
        ("javascript:alert(1)", False),
        ("ohif/", False),
        ("", False),
        (None, False),
        ("/" + "a" * 3000, False),
    ],
)
def test_next_is_a_path_of_this_site_only(target: str | None, kept: bool) -> None:
    assert safe_next(target) == (target if kept else DEFAULT_NEXT)


def test_failed_logins_lock_the_name_everywhere_even_with_the_right_password(client: TestClient) -> None:
    assert _token(client, "alice", "wrong password") == 401
    assert _token(client, "alice", "wrong again", "/auth/token") == 401  # MONAI Label's entry point counts too
    assert _token(client, "alice", PASSWORD) == 429
    assert _token(client, "alice", PASSWORD, "/auth/token") == 429
    reply = client.post("/api/auth/session", data={"username": "alice", "password": PASSWORD})
    assert reply.status_code == 429 and int(reply.headers["retry-after"]) > 0
    assert _token(client, "bob", PASSWORD) == 200  # another name from the same address still works
    assert _token(client, "bob", PASSWORD, "/auth/token") == 200  # successes never count


def test_failures_from_one_address_lock_every_name_there(client: TestClient) -> None:
    for name in ("carol", "dave", "erin", "frank"):
        assert _token(client, name, "guess") == 401
    assert _token(client, "bob", PASSWORD) == 429


def test_a_browser_session_is_an_httponly_strict_cookie(client: TestClient) -> None:
    form = {"username": "alice", "password": PASSWORD, "next": "/ohif/viewer?x=1"}
    reply = client.post("/api/auth/session", data=form, headers={"Accept": "text/html"}, follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/ohif/viewer?x=1"
    assert reply.headers["set-cookie"].startswith(f"{SESSION_COOKIE}=")
    flags = _cookie_flags(reply.headers["set-cookie"])
    assert {"httponly", "samesite=strict", "path=/", f"max-age={get_settings().session_ttl_s}"} <= flags
    assert "secure" not in flags
    me = client.get("/api/users/me")
    assert me.status_code == 200 and me.json()["username"] == "alice"

    secret = reply.cookies[SESSION_COOKIE]
    ended = client.delete("/api/auth/session")
    assert ended.status_code == 200 and "max-age=0" in _cookie_flags(ended.headers["set-cookie"])
    client.cookies.set(SESSION_COOKIE, secret)  # a copy kept by the browser no longer works
    assert client.get("/api/users/me").status_code == 401


def test_a_session_over_https_is_a_secure_cookie(client: TestClient) -> None:
    reply = client.post("https://testserver/api/auth/session", data={"username": "alice", "password": PASSWORD})
    assert reply.status_code == 200 and reply.json() == {"username": "alice", "expires_in": 8 * 3600}
    assert "secure" in _cookie_flags(reply.headers["set-cookie"])


def test_a_forged_forwarded_proto_is_not_believed(client: TestClient) -> None:
    form = {"username": "alice", "password": PASSWORD}
    reply = client.post("/api/auth/session", data=form, headers={"X-Forwarded-Proto": "https"})
    assert reply.status_code == 200
    assert "secure" not in _cookie_flags(reply.headers["set-cookie"])


def test_a_failed_browser_login_goes_back_to_the_page(client: TestClient) -> None:
    form = {"username": "alice", "password": "wrong", "next": "//evil.example/"}
    reply = client.post("/api/auth/session", data=form, headers={"Accept": "text/html"}, follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/login?error=1&next=%2Fohif%2F"
    assert "set-cookie" not in reply.headers
    page = client.get(reply.headers["location"])
    assert page.status_code == 200 and 'role="alert"' in page.text
    assert client.post("/api/auth/session", data={"username": "alice", "password": "wrong"}).status_code == 401


def test_a_login_form_posted_from_another_site_is_refused(client: TestClient) -> None:
    form = {"username": "alice", "password": PASSWORD}
    reply = client.post("/api/auth/session", data=form, headers={"Origin": "https://evil.example"})
    assert reply.status_code == 403 and "set-cookie" not in reply.headers


def test_the_login_page_is_self_contained(client: TestClient) -> None:
    page = client.get("/login", params={"next": '/ohif/"><script>alert(1)</script>'})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text and "&quot;&gt;&lt;script" in page.text
    assert 'action="/api/auth/session"' in page.text and 'type="password"' in page.text
    assert 'for="username"' in page.text and 'for="password"' in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert 'value="/ohif/"' in client.get("/login", params={"next": "https://evil.example/"}).text
