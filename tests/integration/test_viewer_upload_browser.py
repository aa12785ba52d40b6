"""The bundled OHIF's Upload in a real browser (Debian's chromium, as in ``test_viewer_browser.py``): a cohort
admin's study lands in the cohort they administer, and the page asks no other host."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser

from awesomme.phantoms import generate_patient
from tests.integration.conftest import Cohorts, client_for
from tests.integration.test_viewer_browser import IN_VIEWER, _log_in, _new_context, browser  # noqa: F401

UPLOAD = re.compile(r"/proxy/dicom/wado/studies$")


def test_a_cohort_admins_upload_in_the_bundled_viewer_lands_in_their_cohort(
    browser: Browser,  # noqa: F811  (the viewer tests' fixture)
    server_url: str,
    cohorts: Cohorts,
    tmp_path: Path,
) -> None:
    patient = generate_patient("osteosarcoma-mr", 8861, tmp_path, shape=(2, 32, 32))
    context = _new_context(browser, server_url)
    hosts: set[str] = set()
    uploads: list[int] = []
    try:
        page = context.new_page()
        page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
        page.on("response", lambda reply: uploads.append(reply.status) if UPLOAD.search(reply.url) else None)
        page.goto("/ohif/")
        _log_in(page, cohorts.alpha_admin)
        page.wait_for_url(IN_VIEWER)
        page.get_by_text("Upload", exact=True).first.click()
        files = page.locator("input[type=file]:not([webkitdirectory])").first
        files.set_input_files([str(path) for path in patient.dicom_files])  # one request per file, at once
        for _ in range(240):
            if len(uploads) == len(patient.dicom_files):
                break
            page.wait_for_timeout(250)
        assert uploads == [200] * len(patient.dicom_files)
    finally:
        context.close()
    assert hosts == {urlsplit(server_url).netloc}
    series = f"/dicom-web/studies/{patient.study_uid}/series/{patient.series_uid}/metadata"
    with client_for(server_url, cohorts.alpha_member) as member:
        assert len(member.get(series).json()) == 2
    with client_for(server_url, cohorts.beta_member) as beta:
        assert beta.get(series).status_code == 404
