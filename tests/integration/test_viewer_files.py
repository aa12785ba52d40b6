"""``/ohif/``: the bundled viewer's pages and stylesheets, as served, name no other host to load from."""

from __future__ import annotations

import re

import pytest

from awesomme.api.routes.viewer_files import VIEWER_DIR
from awesomme.api.security_headers import VIEWER_POLICY
from tests.integration.conftest import Cohorts, client_for

# What a browser would fetch by itself: an element's href/src, a stylesheet's import or url(), to another host.
HTML_ELSEWHERE = re.compile(r"""\b(?:href|src)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)
CSS_ELSEWHERE = re.compile(r"""(?:@import\s+(?:url\(\s*)?|url\(\s*)["']?(?:https?:)?//""", re.IGNORECASE)


@pytest.mark.parametrize("page", ["/ohif/", "/ohif/index.html", "/ohif/viewer?StudyInstanceUIDs=1.2.3"])
def test_the_served_viewer_page_references_no_other_host(server_url: str, cohorts: Cohorts, page: str) -> None:
    with client_for(server_url, cohorts.alpha_member) as browser:
        reply = browser.get(page)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
    assert "<html" in reply.text and "app-config.js" in reply.text  # the viewer itself, still whole
    assert HTML_ELSEWHERE.search(reply.text) is None
    assert "fonts.googleapis.com" not in reply.text and "fonts.gstatic.com" not in reply.text
    assert reply.headers["content-security-policy"] == VIEWER_POLICY


def test_no_served_stylesheet_imports_from_another_host(server_url: str, cohorts: Cohorts) -> None:
    stylesheets = sorted(VIEWER_DIR.rglob("*.css"))
    assert any(CSS_ELSEWHERE.search(sheet.read_text(errors="replace")) for sheet in stylesheets)  # as shipped
    with client_for(server_url, cohorts.alpha_member) as browser:
        for sheet in stylesheets:
            reply = browser.get(f"/ohif/{sheet.relative_to(VIEWER_DIR).as_posix()}")
            assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/css"), sheet
            assert CSS_ELSEWHERE.search(reply.text) is None, sheet


def test_viewer_paths_stay_inside_the_viewer(server_url: str, cohorts: Cohorts) -> None:
    with client_for(server_url, cohorts.alpha_member) as browser:
        index = browser.get("/ohif/").content
        for escape in ("/ohif/..%2F..%2F__init__.py", "/ohif/%2e%2e/%2e%2e/ohif.py", "/ohif/assets/../../ohif.py"):
            reply = browser.get(escape)
            assert reply.status_code == 404 or reply.content == index, escape
            assert b"get_ohif" not in reply.content and b"Copyright" not in reply.content[:200]
        for impossible in ("/ohif/%00", "/ohif/assets/a%00.css", "/ohif/" + "x" * 300):  # no file can have these
            reply = browser.get(impossible)
            assert reply.status_code == 200 and reply.content == index, impossible
        config = browser.get("/ohif/app-config.js")
        assert config.status_code == 200 and "/proxy/dicom/wado" in config.text
        assert config.headers["content-type"].split(";")[0] in ("application/javascript", "text/javascript")
    with client_for(server_url, None) as anonymous:
        assert anonymous.get("/ohif/app-config.js").status_code in (401, 303, 307)
