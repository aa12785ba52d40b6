"""The login is the author, on the real server and Orthanc: labels saved with MONAI Label's own client carry the
logged-in user whatever the client names, a label saved with a model's name corrects that model's prediction and
is compared with it, and an import's declared reader stays a reader, apart from the accounts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest

from awesomme.dicom.volumes import grid_from_datasets
from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import (
    Account,
    Cohorts,
    StoredPatient,
    attach_to_cohort,
    bind_model,
    client_for,
    monailabel_client,
    store_patient,
)
from tests.seg_files import nifti_bytes

TUMOUR = [{"name": "tumour", "idx": 1}]


@pytest.fixture(scope="module")
def bound(server_url: str, admin: Account) -> None:
    """The test model that labels everything runs on alpha."""
    bind_model(server_url, admin, "everything_mr", ["alpha"])


def _patient(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, seed: int, out: Path
) -> StoredPatient:
    stored = store_patient(orthanc, "osteosarcoma-mr", seed, out)
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[stored.patient.study_uid])
    return stored


def _listing(server_url: str, account: Account, series_uid: str) -> dict[str, dict[str, Any]]:
    with client_for(server_url, account) as http:
        reply = http.get("/api/segmentations", params={"series_uid": series_uid})
    assert reply.status_code == 200, reply.text
    return {item["seg_uid"]: item for item in reply.json()}


def _content_creator(orthanc: OrthancClient, stored: StoredPatient, seg_uid: str) -> str:
    seg: pydicom.Dataset = orthanc.retrieve_series(stored.patient.study_uid, seg_uid)[0]
    return str(seg.ContentCreatorName)


def test_monailabel_client_saves_a_label_with_no_author_and_the_login_is_its_author(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path: Path
) -> None:
    stored = _patient(server_url, admin, cohorts, orthanc, 2001, tmp_path / "p")
    client = monailabel_client(server_url, cohorts.alpha_member, tmp_path)
    saved = client.save_label(
        stored.patient.series_uid, str(stored.patient.truth["tumour"]), params={"label_info": TUMOUR}
    )
    item = _listing(server_url, cohorts.alpha_member, stored.patient.series_uid)[saved["label"]]
    assert (item["role"], item["algorithm_type"], item["author"], item["created_by"], item["reader"]) == (
        "label",
        "MANUAL",
        "alpha.member",
        "alpha.member",
        None,
    )
    assert _content_creator(orthanc, stored, saved["label"]) == "alpha.member"


def test_a_member_cannot_save_a_label_naming_another_user_and_may_delete_their_own(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path: Path
) -> None:
    stored = _patient(server_url, admin, cohorts, orthanc, 2002, tmp_path / "p")
    series_uid, truth = stored.patient.series_uid, str(stored.patient.truth["tumour"])
    member = monailabel_client(server_url, cohorts.alpha_member, tmp_path)
    forged = {"label_info": TUMOUR, "author": "alpha.admin", "user": "alpha.admin", "created_by": "alpha.admin"}
    mine = member.save_label(series_uid, truth, params=forged)["label"]
    theirs = monailabel_client(server_url, cohorts.alpha_admin, tmp_path).save_label(series_uid, truth)["label"]
    listing = _listing(server_url, cohorts.alpha_member, series_uid)
    assert (listing[mine]["author"], listing[mine]["created_by"]) == ("alpha.member", "alpha.member")
    assert (listing[theirs]["author"], listing[theirs]["created_by"]) == ("alpha.admin", "alpha.admin")
    assert _content_creator(orthanc, stored, mine) == "alpha.member"
    with client_for(server_url, cohorts.alpha_member) as http:
        refused = http.delete(f"/api/segmentations/{theirs}")
        assert refused.status_code == 403, refused.text  # not theirs, whatever name they wrote before
        assert http.delete(f"/api/segmentations/{mine}").status_code == 200  # the person who saved it
    assert set(_listing(server_url, cohorts.alpha_member, series_uid)) == {theirs}


def test_a_label_saved_with_a_models_name_corrects_its_prediction_and_agreement_compares_them(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path: Path, bound: None
) -> None:
    stored = _patient(server_url, admin, cohorts, orthanc, 2003, tmp_path / "p")
    series_uid = stored.patient.series_uid
    client = monailabel_client(server_url, cohorts.alpha_member, tmp_path)
    _, params = client.infer("everything_mr", series_uid, {})
    prediction = params["seg_series_uid"]
    # what 3D Slicer's module submits: the segments and the selected model, no tag, no author
    saved = client.save_label(
        series_uid, str(stored.patient.truth["tumour"]), params={"label_info": TUMOUR, "model": "everything_mr"}
    )
    # a client's tag "original" (MONAI Label's tag of a model's output) does not make a prediction either
    tagged = client.save_label(
        series_uid, str(stored.patient.truth["tumour"]), tag="original", params={"label_info": TUMOUR}
    )
    listing = _listing(server_url, cohorts.alpha_member, series_uid)
    label = listing[saved["label"]]
    assert (label["role"], label["algorithm_type"], label["derived_from"], label["model"], label["author"]) == (
        "label",
        "SEMIAUTOMATIC",
        prediction,
        "everything_mr",
        "alpha.member",
    )
    assert listing[prediction]["role"] == "prediction" and listing[prediction]["created_by"] == "alpha.member"
    assert (listing[tagged["label"]]["role"], listing[tagged["label"]]["tag"]) == ("label", "original")
    assert [item["seg_uid"] for item in listing.values() if item["role"] == "prediction"] == [prediction]

    with client_for(server_url, cohorts.alpha_member) as http:
        result = http.get("/api/agreement/segmentations", params={"series_uid": series_uid}).json()
    raters = {(a["author"], a["kind"]): a["seg_uid"] for a in result["authors"]}
    # the person's newest label and the model's prediction: the correction never replaces the model's output
    assert raters == {("alpha.member", "account"): tagged["label"], ("model:everything_mr", "model"): prediction}
    (pair,) = result["pairs"]
    assert (pair["author_a"], pair["kind_a"], pair["author_b"], pair["kind_b"]) == (
        "alpha.member",
        "account",
        "model:everything_mr",
        "model",
    )
    assert 0 < pair["dice"] < 1  # a tumour against a model that labels every voxel
    # the module names its selected model with every save: where that model predicted nothing, it is drawn by hand
    other = _patient(server_url, admin, cohorts, orthanc, 2004, tmp_path / "q")
    manual = client.save_label(
        other.patient.series_uid, str(other.patient.truth["tumour"]), params={"model": "everything_mr"}
    )
    item = _listing(server_url, cohorts.alpha_member, other.patient.series_uid)[manual["label"]]
    assert (item["algorithm_type"], item["derived_from"], item["model"]) == ("MANUAL", None, None)


def test_an_imports_reader_is_its_content_creator_and_never_merges_with_an_account(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path: Path
) -> None:
    stored = _patient(server_url, admin, cohorts, orthanc, 2005, tmp_path / "p")
    series_uid = stored.patient.series_uid
    mask = np.zeros(grid_from_datasets(stored.datasets).shape, np.uint8)
    mask[8:12, 60:80, 60:80] = 1
    data = nifti_bytes(mask, stored.patient.affine)
    form = {"series_uid": series_uid, "segment_label": "tumour"}
    own = monailabel_client(server_url, cohorts.alpha_member, tmp_path).save_label(
        series_uid, str(stored.patient.truth["tumour"]), params={"label_info": TUMOUR}
    )["label"]
    with client_for(server_url, cohorts.alpha_admin) as http:
        # a reader named like an account stays a reader
        reply = http.post(
            "/api/segmentations/import",
            files={"file": ("earlier.nii.gz", data, "application/octet-stream")},
            data={**form, "reader": "alpha.member"},
        )
        assert reply.status_code == 201, reply.text
        imported = reply.json()["seg_uid"]
        clash = http.post(
            "/api/segmentations/import",
            files={"file": ("earlier.nii.gz", data, "application/octet-stream")},
            data={**form, "reader": "Doe^Jane", "author": "Roe^John"},
        )
        assert clash.status_code == 422 and "reader" in clash.json()["detail"]
    item = _listing(server_url, cohorts.alpha_member, series_uid)[imported]
    assert (item["author"], item["reader"], item["created_by"], item["origin"]) == (
        "alpha.member",
        "alpha.member",
        "alpha.admin",
        "import",
    )
    assert _content_creator(orthanc, stored, imported) == "alpha.member"
    with client_for(server_url, cohorts.alpha_member) as http:
        assert http.delete(f"/api/segmentations/{imported}").status_code == 403  # the reader's name owns nothing
        result = http.get("/api/agreement/segmentations", params={"series_uid": series_uid}).json()
    raters = {(a["author"], a["kind"]): a for a in result["authors"]}
    assert set(raters) == {("alpha.member", "account"), ("alpha.member", "reader")}
    assert raters[("alpha.member", "account")]["seg_uid"] == own
    assert raters[("alpha.member", "reader")]["created_by"] == "alpha.admin"
    assert len(result["pairs"]) == 1
    with client_for(server_url, admin) as http:
        events = http.get("/api/audit", params={"action": "segmentation.import", "limit": 1000}).json()
    event = next(e for e in events if e["target"] == imported)
    assert (event["actor"], event["params"]["reader"]) == ("alpha.admin", "alpha.member")  # both, in the journal
