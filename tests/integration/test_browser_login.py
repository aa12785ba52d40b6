"""The browser's way in against the real server: the login page, the session cookie, the viewer behind it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from awesomme.api.access import SESSION_COOKIE
from awesomme.core.config import Settings
from tests.integration.conftest import Account, create_account

HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture(scope="module")
def viewer_user(platform: Settings) -> Account:
    return create_account("browser.user")


@pytest.fixture()
def browser(server_url: str) -> Iterator[httpx.Client]:
    """A client that keeps cookies and does not follow redirects, to look at each answer."""
    with httpx.Client(base_url=server_url, timeout=60, follow_redirects=False) as client:
        yield client


def _flags(set_cookie: str) -> set[str]:
    return {part.strip().lower() for part in set_cookie.split(";")[1:]}


def _log_in(browser: httpx.Client, account: Account, next_page: str = "/ohif/", **headers: str) -> httpx.Response:
    form = {"username": account.username, "password": account.password, "next": next_page}
    return browser.post("/api/auth/session", data=form, headers={**HTML, **headers})


def test_the_login_page_is_a_plain_accessible_form(browser: httpx.Client) -> None:
    page = browser.get("/login", params={"next": "/ohif/viewer?StudyInstanceUIDs=1.2.3"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="en">' in page.text and 'action="/api/auth/session"' in page.text
    for field in ('for="username"', 'for="password"', 'autocomplete="current-password"', 'type="submit"'):
        assert field in page.text
    assert 'value="/ohif/viewer?StudyInstanceUIDs=1.2.3"' in page.text
    assert "<script" not in page.text and "http://" not in page.text and "https://" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for foreign in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        assert 'value="/ohif/"' in browser.get("/login", params={"next": foreign}).text


def test_the_viewer_sends_strangers_to_the_login_page(browser: httpx.Client) -> None:
    reply = browser.get("/ohif/")
    assert reply.status_code == 303 and reply.headers["location"] == "/login?next=/ohif/"
    browser.cookies.set(SESSION_COOKIE, "forged-session-secret")
    reply = browser.get("/ohif/")
    assert reply.status_code == 303 and reply.headers["location"].startswith("/login")


def test_logging_in_sets_a_strict_httponly_cookie_that_opens_the_viewer(
    browser: httpx.Client, viewer_user: Account, platform: Settings
) -> None:
    reply = _log_in(browser, viewer_user, "/ohif/viewer")
    assert reply.status_code == 303 and reply.headers["location"] == "/ohif/viewer"
    assert reply.headers["set-cookie"].startswith(f"{SESSION_COOKIE}=")
    flags = _flags(reply.headers["set-cookie"])
    assert {"httponly", "samesite=strict", "path=/", f"max-age={platform.session_ttl_s}"} <= flags
    assert "secure" not in flags  # plain http here

    viewer = browser.get("/ohif/")
    assert viewer.status_code == 200 and "<html" in viewer.text.lower()
    me = browser.get("/api/users/me")
    assert me.status_code == 200 and me.json()["username"] == viewer_user.username


def test_a_forwarded_proto_from_an_untrusted_client_is_ignored(browser: httpx.Client, viewer_user: Account) -> None:
    """No proxy is trusted by default: a local client claiming https gets the plain-http cookie."""
    reply = _log_in(browser, viewer_user, **{"X-Forwarded-Proto": "https"})
    assert reply.status_code == 303
    assert "secure" not in _flags(reply.headers["set-cookie"])


def test_scripts_get_json_and_no_redirects(server_url: str, viewer_user: Account, platform: Settings) -> None:
    form = {"username": viewer_user.username, "password": viewer_user.password}
    reply = httpx.post(f"{server_url}/api/auth/session", data=form)
    assert reply.status_code == 200
    assert reply.json() == {"username": viewer_user.username, "expires_in": platform.session_ttl_s}
    wrong = httpx.post(f"{server_url}/api/auth/session", data={**form, "password": "not the password"})
    assert wrong.status_code == 401 and SESSION_COOKIE not in wrong.headers.get("set-cookie", "")


def test_a_wrong_password_in_the_form_goes_back_to_the_page(browser: httpx.Client, viewer_user: Account) -> None:
    reply = _log_in(browser, Account(viewer_user.username, "not the password"), "/ohif/viewer")
    assert reply.status_code == 303
    assert reply.headers["location"] == "/login?error=1&next=%2Fohif%2Fviewer"
    assert "set-cookie" not in reply.headers
    page = browser.get(reply.headers["location"])
    assert 'role="alert"' in page.text and 'value="/ohif/viewer"' in page.text
    offsite = _log_in(browser, viewer_user, "//evil.example/")
    assert offsite.status_code == 303 and offsite.headers["location"] == "/ohif/"


def test_logging_out_ends_the_session_on_the_server(browser: httpx.Client, viewer_user: Account) -> None:
    secret = _log_in(browser, viewer_user).cookies[SESSION_COOKIE]
    assert browser.get("/api/users/me").status_code == 200
    reply = browser.delete("/api/auth/session")
    assert reply.status_code == 200 and "max-age=0" in _flags(reply.headers["set-cookie"])
    browser.cookies.set(SESSION_COOKIE, secret)  # a copy of the cookie kept somewhere no longer works
    assert browser.get("/api/users/me").status_code == 401
    assert browser.get("/ohif/").status_code == 303
    browser.cookies.clear()
    assert browser.delete("/api/auth/session").status_code == 200  # no session: nothing to end, still fine


def test_a_password_change_ends_browser_sessions(browser: httpx.Client, server_url: str) -> None:
    account = create_account("browser.changer")
    _log_in(browser, account)
    assert browser.get("/api/users/me").status_code == 200
    change = {"current_password": account.password, "new_password": "a-brand-new-password"}
    reply = httpx.post(f"{server_url}/api/users/me/password", json=change, headers=account.headers(server_url))
    assert reply.status_code == 200
    assert browser.get("/api/users/me").status_code == 401


def test_cookie_writes_from_another_site_are_refused(browser: httpx.Client, viewer_user: Account) -> None:
    _log_in(browser, viewer_user)
    reply = browser.post("/api/invites/redeem", json={"code": "x"}, headers={"Origin": "https://evil.example"})
    assert reply.status_code == 403
    login = browser.post(
        "/api/auth/session",
        data={"username": viewer_user.username, "password": viewer_user.password},
        headers={"Origin": "https://evil.example"},
    )
    assert login.status_code == 403
