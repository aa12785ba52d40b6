"""``/viewer/`` and ``/viewer-plugins/``: the pinned OHIF patched to live under ``/viewer/``, its settings written
by the server, our plugin's bundles; anonymous browsers go to the login page first."""

from __future__ import annotations

import re

import pytest

from awesomme.api.routes.viewer import EXTENSION_FILE, MODE_FILE
from awesomme.api.security_headers import OHIF_VIEWER_POLICY
from awesomme.core.config import get_settings
from tests.integration.conftest import Cohorts, client_for

ELSEWHERE = re.compile(r"""\b(?:href|src)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    dist, plugins = get_settings().viewer_dist_dir, get_settings().viewer_plugins_dir
    if not (dist / "index.html").is_file() or not (plugins / EXTENSION_FILE).is_file():
        pytest.fail(f"the viewer is not installed in {dist} / {plugins}: run `make viewer`")


@pytest.mark.parametrize("page", ["/viewer/", "/viewer/awesomme?StudyInstanceUIDs=1.2.3", "/viewer-plugins/x.mjs"])
def test_an_anonymous_browser_is_sent_to_the_login_page_first(server_url: str, page: str) -> None:
    with client_for(server_url, None) as anonymous:
        reply = anonymous.get(page)
    if page.startswith("/viewer/"):
        assert reply.status_code == 303
        assert reply.headers["location"] == f"/login?next={page.split('?')[0]}"
    else:  # a module import, not a page: a plain refusal
        assert reply.status_code == 401


def test_the_login_page_keeps_its_form_first_and_returns_only_to_local_paths(server_url: str) -> None:
    with client_for(server_url, None) as anonymous:
        page = anonymous.get("/login", params={"next": "/viewer/"}).text
        first_form = page[page.index("<form") : page.index("</form>")]
        assert 'name="username"' in first_form and 'name="password"' in first_form and "submit" in first_form
        assert 'value="/viewer/"' in first_form
        for elsewhere in ("//evil.example/viewer/", "https://evil.example/", "/\\evil.example"):
            form = anonymous.get("/login", params={"next": elsewhere}).text
            assert "evil.example" not in form, elsewhere


def test_the_viewer_is_served_under_viewer_with_its_routes_and_no_other_host(server_url: str, cohorts: Cohorts) -> None:
    with client_for(server_url, cohorts.alpha_member) as browser:
        index = browser.get("/viewer/")
        assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
        assert 'window.PUBLIC_URL="/viewer/"' in index.text and 'src="/viewer/app-config.js"' in index.text
        assert "init-service-worker" not in index.text and ELSEWHERE.search(index.text) is None
        assert index.headers["content-security-policy"] == OHIF_VIEWER_POLICY
        assert index.headers["cache-control"] == "no-cache"
        # The viewer's own routes (no extension) are its page; a missing file is a 404, never the page.
        route = browser.get("/viewer/awesomme", params={"StudyInstanceUIDs": "1.2.3"})
        assert route.status_code == 200 and route.content == index.content
        assert browser.get("/viewer/missing.bundle.js").status_code == 404
        assert browser.get("/viewer/assets/nothing.png").status_code == 404
        for escape in ("/viewer/..%2F..%2Fsetup.py", "/viewer/%2e%2e/%2e%2e/setup.py", "/viewer/a%00.js"):
            assert browser.get(escape).status_code == 404, escape
        wasm = next(get_settings().viewer_dist_dir.glob("*.wasm")).name
        reply = browser.get(f"/viewer/{wasm}")
        assert reply.status_code == 200 and reply.headers["content-type"] == "application/wasm"
        css = browser.get("/viewer/app.bundle.css").text
        assert "url(/viewer/" in css and "url(/a" not in css
        for name in (EXTENSION_FILE, MODE_FILE):
            plugin = browser.get(f"/viewer-plugins/{name}")
            assert plugin.status_code == 200, name
            assert plugin.headers["content-type"].startswith("text/javascript")
        assert browser.get("/viewer-plugins/../package.json").status_code == 404


def test_the_viewers_settings_name_only_this_servers_dicomweb_and_bitmap_seg(server_url: str, cohorts: Cohorts) -> None:
    with client_for(server_url, cohorts.alpha_member) as browser:
        config = browser.get("/viewer/app-config.js")
    assert config.status_code == 200 and config.headers["content-type"].startswith("text/javascript")
    text = config.text
    assert "http://" not in text and "https://" not in text  # no demo server, no other host
    assert '"qidoRoot": "/dicom-web"' in text and '"wadoRoot": "/dicom-web"' in text
    assert f'"/viewer-plugins/{EXTENSION_FILE}"' in text and f'"/viewer-plugins/{MODE_FILE}"' in text
    assert '"defaultMode": "bitmap"' in text and '"transferSyntaxUID": "1.2.840.10008.1.2.1"' in text
    assert '"routerBasename": "/viewer"' in text
