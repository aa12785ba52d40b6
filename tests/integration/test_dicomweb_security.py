"""``/dicom-web`` on bad input and in what it answers (issue 18, low): 4xx naming the problem, never a 5xx, never
Orthanc's own texts or addresses."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from awesomme.core.config import Settings
from awesomme.orthanc.client import OrthancClient
from awesomme.phantoms import generate_patient
from tests.integration.conftest import Account, Cohorts, StoredPatient, attach_to_cohort, client_for, store_patient


@pytest.fixture(scope="module")
def alpha_patient(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> StoredPatient:
    stored = store_patient(orthanc, "osteosarcoma-mr", 801, tmp_path_factory.mktemp("dw"), shape=(2, 32, 32))
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[stored.patient.study_uid])
    return stored


def _dicom(tmp_path: Path) -> bytes:
    patient = generate_patient("osteosarcoma-mr", 802, tmp_path, shape=(1, 16, 16))
    return patient.dicom_files[0].read_bytes()


@pytest.mark.parametrize("caller", ["admin", "member"])
@pytest.mark.parametrize(
    "params", [{"offset": "abc"}, {"limit": "abc"}, {"limit": "-1"}, {"offset": "9" * 40}, {"limit": "１"}]
)
def test_qido_paging_that_is_not_a_number_is_400(
    caller: str, params: dict[str, str], server_url: str, admin: Account, cohorts: Cohorts
) -> None:
    account = admin if caller == "admin" else cohorts.alpha_member
    with client_for(server_url, account) as client:
        reply = client.get("/dicom-web/studies", params=params)
    assert reply.status_code == 400, reply.text
    assert next(iter(params)) in reply.json()["detail"]


def test_stow_as_form_data_is_415_and_stores_nothing(
    server_url: str, cohorts: Cohorts, orthanc: OrthancClient, tmp_path: Path
) -> None:
    before = orthanc.statistics()["CountInstances"]
    with client_for(server_url, cohorts.alpha_admin) as cohort_admin:
        reply = cohort_admin.post(
            "/dicom-web/studies",
            params={"cohort": cohorts.alpha},
            files={"file": ("image.dcm", _dicom(tmp_path), "application/dicom")},
        )
    assert reply.status_code == 415, reply.text
    assert "multipart/form-data" in reply.json()["detail"]
    assert orthanc.statistics()["CountInstances"] == before


def test_stow_multipart_related_without_boundary_is_400(server_url: str, cohorts: Cohorts, tmp_path: Path) -> None:
    content = b"--x\r\nContent-Type: application/dicom\r\n\r\n" + _dicom(tmp_path) + b"\r\n--x--\r\n"
    with client_for(server_url, cohorts.alpha_admin) as cohort_admin:
        reply = cohort_admin.post(
            "/dicom-web/studies",
            params={"cohort": cohorts.alpha},
            content=content,
            headers={"Content-Type": 'multipart/related; type="application/dicom"'},
        )
    assert reply.status_code == 400
    assert "boundary" in reply.json()["detail"]


def test_errors_echo_only_a_short_excerpt(server_url: str, cohorts: Cohorts) -> None:
    long_value = "x" * 5000
    with client_for(server_url, cohorts.alpha_admin) as cohort_admin:
        reply = cohort_admin.post(
            "/dicom-web/studies",
            params={"cohort": cohorts.alpha},
            content=b"",
            headers={"Content-Type": f"multipart/related; boundary={long_value}"},
        )
        assert reply.status_code == 400 and len(reply.text) < 400
        reply = cohort_admin.get("/dicom-web/studies", params={"limit": long_value})
        assert reply.status_code == 400 and len(reply.text) < 400


def test_orthanc_error_texts_and_addresses_never_reach_a_client(
    server_url: str, admin: Account, platform: Settings, alpha_patient: StoredPatient
) -> None:
    internal = httpx.URL(platform.orthanc_url)
    with client_for(server_url, admin) as root:
        reply = root.get("/dicom-web/studies/1.2.3/series/4.5/metadata")
        assert reply.status_code == 404
        assert reply.json() == {"detail": "no such DICOMweb resource"}
        for path in (
            "/dicom-web/studies",
            "/dicom-web/series",
            f"/dicom-web/studies/{alpha_patient.patient.study_uid}/series",
        ):
            reply = root.get(path, headers={"Accept": "application/dicom+json"})
            assert reply.status_code == 200
            assert f":{internal.port}" not in reply.text, path


def test_every_url_points_at_our_dicom_web_under_the_clients_host(
    server_url: str, cohorts: Cohorts, alpha_patient: StoredPatient
) -> None:
    """RetrieveURL in QIDO answers and BulkDataURI in metadata, under the host the client named."""
    study, series = alpha_patient.patient.study_uid, alpha_patient.patient.series_uid
    port = httpx.URL(server_url).port
    with client_for(server_url, cohorts.alpha_member) as member:
        for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
            found = member.get("/dicom-web/studies", params={"StudyInstanceUID": study}, headers={"Host": host}).json()
            assert found[0]["00081190"]["Value"] == [f"http://{host}/dicom-web/studies/{study}"]
            metadata = member.get(f"/dicom-web/studies/{study}/series/{series}/metadata", headers={"Host": host})
            uris = [
                element["BulkDataURI"]
                for item in metadata.json()
                for element in item.values()
                if isinstance(element, dict) and "BulkDataURI" in element
            ]
            assert uris and all(uri.startswith(f"http://{host}/dicom-web/studies/{study}/") for uri in uris)


def test_qido_narrowed_to_the_callers_studies_still_filters_and_pages(
    server_url: str, cohorts: Cohorts, alpha_patient: StoredPatient
) -> None:
    with client_for(server_url, cohorts.alpha_member) as member:
        everything = member.get("/dicom-web/studies").json()
        studies = [item["0020000D"]["Value"][0] for item in everything]
        assert alpha_patient.patient.study_uid in studies
        assert [item["0020000D"]["Value"][0] for item in member.get("/dicom-web/studies?offset=1").json()] == (
            studies[1:]
        )
        assert len(member.get("/dicom-web/studies", params={"limit": 1}).json()) == 1
        series = member.get("/dicom-web/series").json()
        assert {item["0020000D"]["Value"][0] for item in series} <= set(studies)
