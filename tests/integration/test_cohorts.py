"""Cohorts filter everything: DICOMweb, the datastore, active learning, inference, model listings; STOW joins a cohort.

Real tokens against the real server and Orthanc. Series stored straight into Orthanc belong to no cohort until a
platform admin attaches them.
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from monailabel.client import MONAILabelClient
from monailabel.client.client import MONAILabelClientException

from awesomme.orthanc.client import OrthancClient
from awesomme.phantoms import generate_patient
from tests.integration.conftest import (
    Account,
    Cohorts,
    StoredPatient,
    attach_to_cohort,
    client_for,
    monailabel_client,
    store_patient,
)


class Data:
    """An MR patient and a CT patient in alpha, an MR patient in beta, one in no cohort."""

    def __init__(self, alpha_mr: StoredPatient, alpha_ct: StoredPatient, beta_mr: StoredPatient, loose: StoredPatient):
        self.alpha_mr = alpha_mr
        self.alpha_ct = alpha_ct
        self.beta_mr = beta_mr
        self.loose = loose


@pytest.fixture(scope="module")
def data(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> Data:
    out = tmp_path_factory.mktemp("cohort-data")
    alpha_mr = store_patient(orthanc, "osteosarcoma-mr", 601, out / "a")
    alpha_ct = store_patient(orthanc, "chest-ct", 602, out / "b")
    beta_mr = store_patient(orthanc, "osteosarcoma-mr", 603, out / "c")
    loose = store_patient(orthanc, "osteosarcoma-mr", 604, out / "d")
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[alpha_mr.patient.study_uid])
    attach_to_cohort(server_url, admin, cohorts.alpha, series=[alpha_ct.patient.series_uid])
    attach_to_cohort(server_url, admin, cohorts.beta, studies=[beta_mr.patient.study_uid])
    # The test model that labels everything runs on alpha only.
    reply = httpx.put(
        f"{server_url}/api/models/everything_mr/cohorts", json={"cohorts": ["alpha"]}, headers=admin.headers(server_url)
    )
    assert reply.status_code == 200 and [c["name"] for c in reply.json()["cohorts"]] == ["alpha"]
    return Data(alpha_mr, alpha_ct, beta_mr, loose)


def _studies(client: httpx.Client) -> set[str]:
    reply = client.get("/dicom-web/studies")
    assert reply.status_code == 200, reply.text
    return {item["0020000D"]["Value"][0] for item in reply.json()}


def _series(client: httpx.Client) -> set[str]:
    reply = client.get("/dicom-web/series")
    assert reply.status_code == 200, reply.text
    return {item["0020000E"]["Value"][0] for item in reply.json()}


def test_qido_shows_each_member_only_their_cohorts_data(server_url: str, cohorts: Cohorts, data: Data) -> None:
    with client_for(server_url, cohorts.alpha_member) as alpha, client_for(server_url, cohorts.beta_member) as beta:
        alpha_studies, beta_studies = _studies(alpha), _studies(beta)
        assert {data.alpha_mr.patient.study_uid, data.alpha_ct.patient.study_uid} <= alpha_studies
        assert data.beta_mr.patient.study_uid not in alpha_studies
        assert data.loose.patient.study_uid not in alpha_studies | beta_studies
        assert data.beta_mr.patient.study_uid in beta_studies
        assert not {data.alpha_mr.patient.study_uid, data.alpha_ct.patient.study_uid} & beta_studies
        assert data.beta_mr.patient.series_uid not in _series(alpha)
        assert data.alpha_mr.patient.series_uid in _series(alpha)
        # Paging applies to what the caller may see.
        assert len(alpha.get("/dicom-web/studies", params={"limit": 1}).json()) == 1


def test_wado_outside_ones_cohorts_is_404(server_url: str, cohorts: Cohorts, data: Data) -> None:
    beta_series = data.beta_mr.patient
    with client_for(server_url, cohorts.alpha_member) as alpha:
        assert (
            alpha.get(f"/dicom-web/studies/{beta_series.study_uid}/series/{beta_series.series_uid}").status_code == 404
        )
        assert alpha.get(f"/dicom-web/studies/{beta_series.study_uid}").status_code == 404
        assert alpha.get(f"/dicom-web/studies/{beta_series.study_uid}/series").json() == []
        mine = data.alpha_mr.patient
        metadata = alpha.get(f"/dicom-web/studies/{mine.study_uid}/series/{mine.series_uid}/metadata")
        assert metadata.status_code == 200 and len(metadata.json()) == len(data.alpha_mr.datasets)
        # The bundled viewer's proxy path is filtered the same way.
        proxied = alpha.get(
            f"/proxy/dicom/wado/studies/{beta_series.study_uid}/series/{beta_series.series_uid}/metadata"
        )
        assert proxied.status_code == 404
        assert data.beta_mr.patient.study_uid not in {
            item["0020000D"]["Value"][0] for item in alpha.get("/proxy/dicom/qido/studies").json()
        }


def test_a_series_attached_alone_shows_without_the_rest_of_its_study(
    server_url: str, admin: Account, cohorts: Cohorts, data: Data, orthanc: OrthancClient, tmp_path: Path
) -> None:
    """alpha holds only the CT series of its study: another series of that study stays hidden."""
    sibling = generate_patient("chest-ct", 605, tmp_path)
    datasets = [pydicom.dcmread(path) for path in sibling.dicom_files]
    first = data.alpha_ct.datasets[0]
    for ds in datasets:  # same patient and study as alpha's CT, another series
        ds.StudyInstanceUID, ds.PatientID, ds.PatientName = first.StudyInstanceUID, first.PatientID, first.PatientName
    orthanc.store(datasets)
    study = data.alpha_ct.patient.study_uid
    with client_for(server_url, cohorts.alpha_member) as alpha:
        listed = {item["0020000E"]["Value"][0] for item in alpha.get(f"/dicom-web/studies/{study}/series").json()}
        assert listed == {data.alpha_ct.patient.series_uid}
        assert alpha.get(f"/dicom-web/studies/{study}").status_code == 404  # not the whole study
        assert alpha.get(f"/dicom-web/studies/{study}/series/{sibling.series_uid}/metadata").status_code == 404


def test_datastore_and_active_learning_stay_within_the_cohort(
    server_url: str, cohorts: Cohorts, data: Data, tmp_path: Path
) -> None:
    member = monailabel_client(server_url, cohorts.alpha_member, tmp_path)
    objects = member.datastore()["objects"]
    assert {data.alpha_mr.patient.series_uid, data.alpha_ct.patient.series_uid} <= set(objects)
    assert data.beta_mr.patient.series_uid not in objects and data.loose.patient.series_uid not in objects
    for _ in range(3):
        picked = member.next_sample("random", {})
        assert picked["id"] in objects
    beta = monailabel_client(server_url, cohorts.beta_member, tmp_path)
    assert set(beta.datastore()["objects"]).isdisjoint(
        {data.alpha_mr.patient.series_uid, data.loose.patient.series_uid}
    )
    with client_for(server_url, cohorts.alpha_member) as alpha:
        reply = alpha.get("/datastore/image/info", params={"image": data.beta_mr.patient.series_uid})
        assert reply.status_code == 404


def test_the_slicer_client_flow_for_a_member(server_url: str, cohorts: Cohorts, data: Data, tmp_path: Path) -> None:
    client = MONAILabelClient(server_url, tmpdir=str(tmp_path))
    assert client.auth_enabled()
    client.update_auth(client.auth_token(cohorts.alpha_member.username, cohorts.alpha_member.password))
    assert "everything_mr" in client.info()["models"]
    image = data.alpha_mr.patient.series_uid
    label_file, _ = client.infer("everything_mr", image, {})
    assert Path(label_file).stat().st_size > 0
    assert client.next_sample("first", {})["id"] in client.datastore()["objects"]
    saved = client.save_label(image, label_file, tag="final", params={"label_info": [{"name": "tumour", "idx": 1}]})
    assert saved["image"] == image
    listing = httpx.get(
        f"{server_url}/api/segmentations",
        params={"series_uid": image},
        headers=cohorts.alpha_member.headers(server_url),
    ).json()
    assert listing and all(
        item["cohorts"] == [{"id": cohorts.alpha, "name": "alpha", "role": "member"}] for item in listing
    )
    with pytest.raises(MONAILabelClientException):  # beta's series does not exist for alpha
        client.infer("everything_mr", data.beta_mr.patient.series_uid, {})


def test_the_slicer_client_flow_for_an_outsider(server_url: str, cohorts: Cohorts, data: Data, tmp_path: Path) -> None:
    client = MONAILabelClient(server_url, tmpdir=str(tmp_path))
    client.update_auth(client.auth_token(cohorts.loner.username, cohorts.loner.password))
    assert client.info()["name"] == "AWESOMME"  # logged in, but no data
    with pytest.raises(MONAILabelClientException):
        client.datastore()
    with pytest.raises(MONAILabelClientException):
        client.infer("everything_mr", data.alpha_mr.patient.series_uid, {})
    anonymous = MONAILabelClient(server_url, tmpdir=str(tmp_path))
    with pytest.raises(MONAILabelClientException):
        anonymous.info()


def test_inference_needs_the_model_bound_to_the_series_cohort(server_url: str, cohorts: Cohorts, data: Data) -> None:
    def infer(account: Account, model: str, series: StoredPatient) -> int:
        with client_for(server_url, account) as client:
            reply = client.post(f"/infer/{model}", params={"image": series.patient.series_uid, "output": "json"})
            return reply.status_code

    assert infer(cohorts.alpha_member, "everything_mr", data.alpha_mr) == 200
    assert infer(cohorts.beta_member, "everything_mr", data.alpha_mr) == 404  # not their series
    assert infer(cohorts.beta_member, "everything_mr", data.beta_mr) == 403  # model not bound to beta
    assert infer(cohorts.alpha_member, "nothing_ct", data.alpha_ct) == 403  # nothing_ct is bound nowhere
    assert infer(cohorts.alpha_member, "everything_mr", data.loose) == 404
    assert infer(cohorts.loner, "everything_mr", data.alpha_mr) == 403  # in no cohort at all
    with client_for(server_url, cohorts.alpha_member) as alpha:
        reply = alpha.post("/infer/everything_mr", params={"session_id": "whatever", "output": "json"})
        assert reply.status_code == 403


def test_models_listing_and_binding(server_url: str, admin: Account, cohorts: Cohorts, data: Data) -> None:
    with client_for(server_url, cohorts.alpha_member) as alpha:
        names = [
            m["name"] for m in alpha.get("/api/models", params={"series_uid": data.alpha_mr.patient.series_uid}).json()
        ]
        assert names == ["everything_mr"]  # MR models bound to alpha; nothing for CT or other cohorts
        listed = alpha.get("/api/models").json()
        assert {"version", "expected_runtime_s", "validation"} <= set(listed[0])
        assert alpha.get("/api/models", params={"series_uid": data.beta_mr.patient.series_uid}).status_code == 404
        assert alpha.put("/api/models/everything_mr/cohorts", json={"cohorts": ["beta"]}).status_code == 403
    with client_for(server_url, cohorts.beta_member) as beta:
        assert beta.get("/api/models", params={"series_uid": data.beta_mr.patient.series_uid}).json() == []
    with client_for(server_url, admin) as root:
        assert root.put("/api/models/no_such_model/cohorts", json={"cohorts": ["alpha"]}).status_code == 404
        assert root.put("/api/models/everything_mr/cohorts", json={"cohorts": ["no-such"]}).status_code == 404


def test_cohort_listing_membership_and_the_last_admin(server_url: str, admin: Account, cohorts: Cohorts) -> None:
    with client_for(server_url, cohorts.alpha_member) as member:
        mine = member.get("/api/cohorts").json()
        assert [(c["name"], c["role"]) for c in mine] == [("alpha", "member")]
        assert member.get(f"/api/cohorts/{cohorts.beta}").status_code == 404
        assert member.get(f"/api/cohorts/{cohorts.alpha}/members").status_code == 403
        assert member.post("/api/cohorts", json={"name": "mine"}).status_code == 403
    with client_for(server_url, cohorts.alpha_admin) as cohort_admin:
        members = {m["username"]: m["role"] for m in cohort_admin.get(f"/api/cohorts/{cohorts.alpha}/members").json()}
        assert members["alpha.member"] == "member" and members["alpha.admin"] == "admin"
        assert cohort_admin.get(f"/api/cohorts/{cohorts.beta}/members").status_code == 404
        url = f"/api/cohorts/{cohorts.alpha}/members"
        # A cohort admin adds nobody directly (invite codes do): an existing account reads as an absent one.
        refused = cohort_admin.put(f"{url}/lone.user", json={"role": "member"})
        assert refused.status_code == 404 and refused.json()["detail"] == "no member lone.user"
        assert cohort_admin.put(f"{url}/nobody.at.all", json={"role": "member"}).status_code == 404
        with client_for(server_url, admin) as root:
            assert root.put(f"{url}/lone.user", json={"role": "member"}).status_code == 200
        assert cohort_admin.delete(f"{url}/lone.user").status_code == 200
        assert cohort_admin.put(f"{url}/alpha.member", json={"role": "owner"}).status_code == 422
    with client_for(server_url, admin) as root:
        everything = {c["name"] for c in root.get("/api/cohorts").json()}
        assert {"alpha", "beta"} <= everything
        created = root.post("/api/cohorts", json={"name": "gamma", "description": "solo"})
        assert created.status_code == 201
        gamma = created.json()["id"]
        assert root.post("/api/cohorts", json={"name": "gamma"}).status_code == 409
        # The creator is gamma's only admin: they can neither leave nor step down.
        assert root.delete(f"/api/cohorts/{gamma}/members/platform.admin").status_code == 409
        assert root.put(f"/api/cohorts/{gamma}/members/platform.admin", json={"role": "member"}).status_code == 409


def _stow_body(datasets: list[pydicom.Dataset]) -> tuple[bytes, str]:
    boundary = "awesommeboundary"
    body = b""
    for ds in datasets:
        buffer = io.BytesIO()
        ds.save_as(buffer, write_like_original=False)
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + buffer.getvalue() + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def test_stow_goes_into_a_cohort_its_caller_administers(
    server_url: str, cohorts: Cohorts, data: Data, tmp_path: Path
) -> None:
    patient = generate_patient("osteosarcoma-mr", 606, tmp_path, shape=(8, 64, 64))
    body, content_type = _stow_body([pydicom.dcmread(path) for path in patient.dicom_files])
    headers = {"Content-Type": content_type, "Accept": "application/dicom+json"}
    with client_for(server_url, cohorts.alpha_member) as member:
        reply = member.post("/dicom-web/studies", params={"cohort": cohorts.alpha}, content=body, headers=headers)
        assert reply.status_code == 403  # members do not store
    with client_for(server_url, cohorts.alpha_admin) as cohort_admin:
        assert cohort_admin.post("/dicom-web/studies", content=body, headers=headers).status_code == 422  # no cohort
        reply = cohort_admin.post("/dicom-web/studies", params={"cohort": cohorts.beta}, content=body, headers=headers)
        assert reply.status_code == 404  # not their cohort
        reply = cohort_admin.post("/dicom-web/studies", params={"cohort": cohorts.alpha}, content=body, headers=headers)
        assert reply.status_code == 200, reply.text
        # Writing into beta's series is refused, even by an admin of alpha.
        foreign = [pydicom.dcmread(path) for path in data.beta_mr.patient.dicom_files[:1]]
        body_foreign, foreign_type = _stow_body(foreign)
        reply = cohort_admin.post(
            "/dicom-web/studies",
            params={"cohort": cohorts.alpha},
            content=body_foreign,
            headers={"Content-Type": foreign_type},
        )
        assert reply.status_code == 403
    with client_for(server_url, cohorts.alpha_member) as member:
        assert patient.study_uid in _studies(member)
    with client_for(server_url, cohorts.beta_member) as beta:
        assert patient.study_uid not in _studies(beta)
    viewer = DICOMwebClient(url=f"{server_url}/dicom-web", headers=cohorts.alpha_member.headers(server_url))
    assert len(viewer.retrieve_series(patient.study_uid, patient.series_uid)) == 8


def test_jobs_need_a_bound_model_and_a_cohort_admin(server_url: str, cohorts: Cohorts, data: Data) -> None:
    """Training and batch runs are for admins of a cohort bound to the model (harmless calls: all refused)."""
    with client_for(server_url, cohorts.alpha_member) as member:
        assert member.post("/train/everything_mr", json={}).status_code == 403
        assert member.post("/batch/infer/everything_mr", json={}).status_code == 403
    with client_for(server_url, cohorts.alpha_admin) as cohort_admin:
        assert cohort_admin.post("/train/nothing_ct", json={}).status_code == 403  # bound nowhere
        assert cohort_admin.post("/train/", json={}).status_code == 403  # every model: platform admins only
        assert cohort_admin.post("/train/everything_mr", content=b"[1, 2]").status_code == 422
        assert (
            cohort_admin.delete("/datastore/image", params={"id": data.alpha_mr.patient.series_uid}).status_code == 403
        )
        assert cohort_admin.delete("/model/everything_mr").status_code == 403
