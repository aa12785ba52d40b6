"""The login flow and the cohort-filtered viewer in a real browser: Debian's chromium, driven by Playwright.

Playwright (PyPI) only drives the browser here: it never downloads one. ``scripts/install-system-deps.sh`` (run by
``make test`` through ``make system-deps``) installs Debian's ``chromium``; without it these tests fail, they do not
skip. WebGL runs on SwiftShader; timeouts are generous for a busy two-core machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Cookie, Page, Response, sync_playwright

from awesomme.api.access import SESSION_COOKIE
from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import Account, Cohorts, StoredPatient, attach_to_cohort, client_for, store_patient

CHROMIUM = Path("/usr/bin/chromium")
# Playwright adds --headless, --no-sandbox and a fresh temporary profile (--user-data-dir) itself.
CHROMIUM_FLAGS = [
    "--disable-gpu",
    "--enable-unsafe-swiftshader",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000
IN_VIEWER = re.compile(r"^http://[^/]+/ohif/")
ON_LOGIN_PAGE = re.compile(r"^http://[^/]+/login\?")
STUDY_SEARCH = re.compile(r"/proxy/dicom/qido/studies(\?|$)")
WRONG_PASSWORD_ADDRESS = "198.51.100.71"  # its own client address: the failed login fills no other test's throttle


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/install-system-deps.sh does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True, timeout=TIMEOUT_MS
        )
        try:
            yield launched
        finally:
            launched.close()


def _new_context(browser: Browser, server_url: str, **options: Any) -> BrowserContext:
    """A fresh browser profile: no cookies, no storage."""
    context = browser.new_context(base_url=server_url, viewport={"width": 1400, "height": 900}, **options)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    return context


@pytest.fixture()
def context(browser: Browser, server_url: str) -> Iterator[BrowserContext]:
    fresh = _new_context(browser, server_url)
    try:
        yield fresh
    finally:
        fresh.close()


@dataclass(frozen=True)
class Studies:
    alpha: StoredPatient
    beta: StoredPatient


@pytest.fixture(scope="module")
def studies(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> Studies:
    out = tmp_path_factory.mktemp("viewer-browser")
    alpha = store_patient(orthanc, "chest-ct", 701, out / "alpha")
    beta = store_patient(orthanc, "osteosarcoma-mr", 702, out / "beta")
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[alpha.patient.study_uid])
    attach_to_cohort(server_url, admin, cohorts.beta, studies=[beta.patient.study_uid])
    return Studies(alpha, beta)


def _rel(url: str) -> str:
    """``/path?query`` of an absolute URL."""
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def _log_in(page: Page, account: Account) -> None:
    page.fill("#username", account.username)
    page.fill("#password", account.password)
    page.click("button[type=submit]")


def _session_cookies(context: BrowserContext) -> list[Cookie]:
    return [cookie for cookie in context.cookies() if cookie.get("name") == SESSION_COOKIE]


def _as_listed(name: object) -> str:
    """A DICOM person name as OHIF's study list writes it (its ``formatPN``): ``PHANTOM^OSTEO^0702`` -> ``PHANTOM,
    OSTEO 0702``."""
    return str(name).replace("^", ", ", 1).replace("^", " ").strip()


def _study_uids(search: Response) -> set[str]:
    assert search.status == 200, search.text()
    return {item["0020000D"]["Value"][0] for item in search.json()}


def test_a_member_logs_in_through_the_form_and_gets_a_strict_httponly_cookie(
    context: BrowserContext, cohorts: Cohorts
) -> None:
    page = context.new_page()
    page.goto("/ohif/")
    assert _rel(page.url) == "/login?next=/ohif/"
    assert page.title().startswith("Log in")
    assert _session_cookies(context) == []

    _log_in(page, cohorts.alpha_member)
    page.wait_for_url(IN_VIEWER)
    assert _rel(page.url).startswith("/ohif/")

    [cookie] = _session_cookies(context)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain http here
    assert cookie["path"] == "/"
    assert SESSION_COOKIE not in page.evaluate("document.cookie")  # page scripts never see it


def test_the_viewer_lists_only_the_members_cohort_studies(
    context: BrowserContext, cohorts: Cohorts, studies: Studies, server_url: str, admin: Account
) -> None:
    alpha_uid, beta_uid = studies.alpha.patient.study_uid, studies.beta.patient.study_uid
    with client_for(server_url, admin) as everything:  # both are in Orthanc: the filter, not chance, hides beta's
        seen_by_admin = {item["0020000D"]["Value"][0] for item in everything.get("/dicom-web/studies").json()}
    assert {alpha_uid, beta_uid} <= seen_by_admin

    page = context.new_page()
    searches: list[Response] = []
    page.on("response", lambda response: searches.append(response) if STUDY_SEARCH.search(response.url) else None)
    page.goto("/ohif/")
    with page.expect_response(lambda response: bool(STUDY_SEARCH.search(response.url))) as first_search:
        _log_in(page, cohorts.alpha_member)
    received = _study_uids(first_search.value)
    assert alpha_uid in received
    assert beta_uid not in received

    # What the page shows: rows only for studies it received (a page of them), alpha's patient in it, beta's nowhere.
    results = page.locator('[data-cy="study-list-results"]')
    results.locator(f'[data-cy="studyRow-{alpha_uid}"]').wait_for(state="visible")
    assert results.locator(f'[data-cy="studyRow-{beta_uid}"]').count() == 0
    listed = page.locator('[data-cy^="studyRow-"]').evaluate_all(
        "rows => rows.map(row => row.getAttribute('data-cy').slice('studyRow-'.length))"
    )
    assert alpha_uid in listed and set(listed) <= received
    text = results.inner_text()
    alpha_dataset, beta_dataset = studies.alpha.datasets[0], studies.beta.datasets[0]
    assert str(alpha_dataset.PatientID) in text
    assert str(beta_dataset.PatientID) not in text
    assert _as_listed(alpha_dataset.PatientName) in text
    assert _as_listed(beta_dataset.PatientName) not in text

    # Every study search the viewer made (the list may search again) came back filtered the same way.
    assert searches
    for search in searches:
        uids = _study_uids(search)
        assert beta_uid not in uids and uids <= received | {alpha_uid}


def test_after_logging_out_the_viewer_sends_the_browser_back_to_the_login_page(
    context: BrowserContext, browser: Browser, cohorts: Cohorts, server_url: str
) -> None:
    page = context.new_page()
    page.goto("/ohif/")
    _log_in(page, cohorts.alpha_member)
    page.wait_for_url(IN_VIEWER)
    [cookie] = _session_cookies(context)

    status = page.evaluate("fetch('/api/auth/session', {method: 'DELETE'}).then(reply => reply.status)")
    assert status == 200
    assert _session_cookies(context) == []
    # The viewer still open in the page can no longer search.
    search = "fetch('/proxy/dicom/qido/studies', {redirect: 'manual'}).then(reply => reply.status)"
    assert page.evaluate(search) == 401
    page.reload()
    page.wait_for_url(ON_LOGIN_PAGE)
    assert _rel(page.url) == "/login?next=/ohif/"
    assert page.locator("#username").is_visible()

    # A copy of the old cookie put back into another browser no longer opens the viewer: the session has ended.
    other = _new_context(browser, server_url)
    try:
        other.add_cookies([{"name": SESSION_COOKIE, "value": cookie["value"], "url": server_url}])
        copied = other.new_page()
        copied.goto("/ohif/")
        assert _rel(copied.url) == "/login?next=/ohif/"
    finally:
        other.close()


def test_a_wrong_password_shows_the_form_again_with_an_error_and_sets_no_cookie(
    browser: Browser, server_url: str, cohorts: Cohorts
) -> None:
    context = _new_context(browser, server_url, extra_http_headers={"X-Forwarded-For": WRONG_PASSWORD_ADDRESS})
    try:
        page = context.new_page()
        page.goto("/ohif/")
        _log_in(page, Account(cohorts.alpha_member.username, "not the password"))
        page.wait_for_url(re.compile(r"/login\?error="))
        assert _rel(page.url) == "/login?error=1&next=%2Fohif%2F"
        alert = page.get_by_role("alert")
        assert "Wrong username or password" in alert.inner_text()
        assert page.locator("#username").is_visible() and page.locator("#password").input_value() == ""
        assert _session_cookies(context) == []
        page.goto("/ohif/")
        assert _rel(page.url) == "/login?next=/ohif/"
    finally:
        context.close()
