"""MONAI Label's bundled OHIF uploads through ``/proxy/dicom/wado/studies``: the platform's STOW, cohort by role.

Each request is the one the viewer's Upload button sends (dicomweb-client's ``storeInstances``: one file per
request, its multipart framing, the session cookie of the browser), with no cohort named.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from awesomme.phantoms import generate_patient
from tests.integration.conftest import Account, Cohorts, client_for, create_account

SHAPE = (2, 32, 32)
UPLOAD = "/proxy/dicom/wado/studies"


def viewer_upload(browser: httpx.Client, dicom_file: bytes) -> httpx.Response:
    """The request of OHIF's Upload, as dicomweb-client's ``multipartEncode`` and ``storeInstances`` build it."""
    boundary = str(uuid.uuid4())
    body = f"\r\n--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + dicom_file
    body += f"\r\n--{boundary}--".encode()
    content_type = f'multipart/related; type="application/dicom"; boundary="{boundary}"'
    return browser.post(UPLOAD, content=body, headers={"Content-Type": content_type, "Accept": "*/*"})


@contextmanager
def browser_of(server_url: str, account: Account) -> Iterator[httpx.Client]:
    """A client holding the session cookie the bundled viewer's pages run with (no Authorization header)."""
    with httpx.Client(base_url=server_url, timeout=120) as browser:
        form = {"username": account.username, "password": account.password}
        assert browser.post("/api/auth/session", data=form).status_code == 200
        yield browser


@pytest.fixture(scope="module")
def two_cohorts_admin(server_url: str, admin: Account, cohorts: Cohorts) -> Account:
    account = create_account("upload.two.admin")
    for cohort in (cohorts.alpha, cohorts.beta):
        reply = httpx.put(
            f"{server_url}/api/cohorts/{cohort}/members/{account.username}",
            json={"role": "admin"},
            headers=admin.headers(server_url),
        )
        assert reply.status_code == 200, reply.text
    return account


def first_file(seed: int, out: Path) -> bytes:
    return generate_patient("osteosarcoma-mr", seed, out, shape=SHAPE).dicom_files[0].read_bytes()


def test_a_cohort_admins_viewer_upload_lands_in_the_cohort_they_administer(
    server_url: str, cohorts: Cohorts, tmp_path: Path
) -> None:
    patient = generate_patient("osteosarcoma-mr", 8811, tmp_path, shape=SHAPE)
    with browser_of(server_url, cohorts.alpha_admin) as browser:
        for path in patient.dicom_files:
            reply = viewer_upload(browser, path.read_bytes())
            assert reply.status_code == 200, reply.text
            stored = reply.json()["00081199"]["Value"]
            assert stored[0]["00081190"]["Value"][0].startswith(f"{server_url}/dicom-web/studies/{patient.study_uid}/")
    series = f"/dicom-web/studies/{patient.study_uid}/series/{patient.series_uid}/metadata"
    with client_for(server_url, cohorts.alpha_member) as member:
        assert len(member.get(series).json()) == SHAPE[0]  # in alpha, whole
    with client_for(server_url, cohorts.beta_member) as beta:
        assert beta.get(series).status_code == 404  # and nowhere else


def test_a_viewer_upload_gets_the_strict_checks_of_stow(server_url: str, cohorts: Cohorts, tmp_path: Path) -> None:
    dicom_file = first_file(8831, tmp_path)
    with browser_of(server_url, cohorts.alpha_admin) as browser:
        not_dicom = viewer_upload(browser, b"not a DICOM file")
        assert not_dicom.status_code == 400 and "part 1" in not_dicom.json()["detail"], not_dicom.text
        boundary = "b0und"
        trailing = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + dicom_file
        trailing += f"\r\n--{boundary}--\r\nepilogue".encode()
        reply = browser.post(
            UPLOAD, content=trailing, headers={"Content-Type": f"multipart/related; boundary={boundary}"}
        )
        assert reply.status_code == 400 and "closing boundary" in reply.json()["detail"], reply.text
        assert browser.post("/proxy/dicom/qido/studies", content=b"").status_code == 405


def test_a_member_cannot_upload_through_the_viewer(server_url: str, cohorts: Cohorts, tmp_path: Path) -> None:
    dicom_file = first_file(8841, tmp_path)
    with browser_of(server_url, cohorts.alpha_member) as browser:
        reply = viewer_upload(browser, dicom_file)
        assert reply.status_code == 422 and "administer no cohort" in reply.json()["detail"], reply.text
        named = browser.post(
            UPLOAD, params={"cohort": cohorts.alpha}, content=b"", headers={"Content-Type": "multipart/related"}
        )
        assert named.status_code == 403, named.text
    with browser_of(server_url, cohorts.loner) as browser:
        assert viewer_upload(browser, dicom_file).status_code == 403


def test_an_admin_of_two_cohorts_is_asked_to_choose_and_may_name_one(
    server_url: str, cohorts: Cohorts, two_cohorts_admin: Account, tmp_path: Path
) -> None:
    patient = generate_patient("osteosarcoma-mr", 8821, tmp_path, shape=SHAPE)
    dicom_file = patient.dicom_files[0].read_bytes()
    with browser_of(server_url, two_cohorts_admin) as browser:
        reply = viewer_upload(browser, dicom_file)
        assert reply.status_code == 422, reply.text
        detail = reply.json()["detail"]
        assert f"alpha (id {cohorts.alpha})" in detail and f"beta (id {cohorts.beta})" in detail
        assert "/viewer/" in detail and "?cohort=" in detail
        boundary = "b0und"
        body = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + dicom_file
        body += f"\r\n--{boundary}--".encode()
        named = browser.post(
            UPLOAD,
            params={"cohort": cohorts.beta},
            content=body,
            headers={"Content-Type": f"multipart/related; type=application/dicom; boundary={boundary}"},
        )
        assert named.status_code == 200, named.text
    with client_for(server_url, cohorts.beta_member) as beta:
        found = beta.get("/dicom-web/studies", params={"StudyInstanceUID": patient.study_uid}).json()
        assert len(found) == 1
    with client_for(server_url, cohorts.alpha_member) as alpha:
        assert alpha.get("/dicom-web/studies", params={"StudyInstanceUID": patient.study_uid}).json() == []
