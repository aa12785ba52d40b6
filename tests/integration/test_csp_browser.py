"""The pages we serve live with their Content-Security-Policy in a real browser (Debian's chromium, as in
``test_viewer_browser.py``): the documentation renders from this server's own files with no violation, and MONAI
Label's bundled viewer renders a CT with no violation and no request to another host (the web fonts it names as
shipped are taken out of its files as served)."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import Browser, Page

from tests.integration.conftest import Cohorts
from tests.integration.test_viewer_browser import (  # noqa: F401  (fixtures)
    IN_VIEWER,
    Studies,
    _log_in,
    _new_context,
    browser,
    studies,
)


def _watch(page: Page) -> tuple[list[str], set[str]]:
    """Console messages about the policy, and every host the page asked for."""
    violations: list[str] = []
    hosts: set[str] = set()
    page.on("console", lambda message: violations.append(message.text) if "Security Policy" in message.text else None)
    page.on("pageerror", lambda error: violations.append(f"page error: {error}"))
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    return violations, hosts


def test_the_docs_page_renders_under_its_policy_from_this_server_only(
    browser: Browser,  # noqa: F811  (the viewer tests' fixture)
    server_url: str,
) -> None:
    context = _new_context(browser, server_url)
    try:
        page = context.new_page()
        violations, hosts = _watch(page)
        page.goto("/docs")
        page.wait_for_selector(".opblock")
        assert page.locator(".opblock").count() > 20  # the operations of /openapi.json are drawn
        assert violations == []
        assert hosts == {urlsplit(server_url).netloc}
    finally:
        context.close()


def test_the_viewer_renders_a_ct_under_its_policy(
    browser: Browser,  # noqa: F811  (the viewer tests' fixtures)
    server_url: str,
    cohorts: Cohorts,
    studies: Studies,  # noqa: F811
) -> None:
    context = _new_context(browser, server_url)
    try:
        page = context.new_page()
        violations, hosts = _watch(page)
        page.goto("/ohif/")
        _log_in(page, cohorts.alpha_member)
        page.wait_for_url(IN_VIEWER)
        page.click(f"text={studies.alpha.patient.patient_id}")
        page.locator("button", has_text="Basic Viewer").first.click()
        page.wait_for_selector("canvas.cornerstone-canvas")
        page.wait_for_timeout(3000)  # late scripts and workers would report their refusals by now
        assert violations == []
        assert hosts == {urlsplit(server_url).netloc}
    finally:
        context.close()
