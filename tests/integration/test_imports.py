"""Imports on the real server and Orthanc: DICOM files (pydicom's test files, phantoms) and legacy NIfTI images
with masks land de-identified in the cohort; a re-import stores nothing new; bad input is named and leaves nothing
behind (counted in Orthanc and in the cohort); only the cohort's admins import, and only the importer reads the
identity map, once."""

from __future__ import annotations

import csv
import gzip
import io
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import highdicom as hd
import httpx
import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from sqlalchemy import select

from awesomme.core.db import session_scope
from awesomme.models import ImportJob, User
from awesomme.orthanc.client import OrthancClient
from awesomme.phantoms import generate_patient
from tests.integration.conftest import Account, Cohorts, client_for, create_account

CANARY_ID = "CANARY-PATIENT-4711"
CANARY_NAME = "Canary^Ida"


@pytest.fixture(scope="module")
def intake(server_url: str, admin: Account, cohorts: Cohorts) -> dict[str, Any]:
    """A de-identifying cohort with an admin and a member of its own (other tests count the shared accounts'
    cohorts)."""
    headers = admin.headers(server_url)
    reply = httpx.post(f"{server_url}/api/cohorts", json={"name": "intake", "description": "imports"}, headers=headers)
    assert reply.status_code == 201, reply.text
    cohort_id = reply.json()["id"]
    intake_admin, intake_member = create_account("intake.admin"), create_account("intake.member")
    for username, role in ((intake_admin.username, "admin"), (intake_member.username, "member")):
        reply = httpx.put(
            f"{server_url}/api/cohorts/{cohort_id}/members/{username}", json={"role": role}, headers=headers
        )
        assert reply.status_code == 200, reply.text
    return {"id": cohort_id, "admin": intake_admin, "member": intake_member}


def _finished(http: httpx.Client, job_id: int, timeout_s: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        report = http.get(f"/api/imports/{job_id}").json()
        if report["status"] != "running":
            return dict(report)
        time.sleep(0.3)
    raise AssertionError(f"import {job_id} still running after {timeout_s} s")


def _import(
    http: httpx.Client, cohort: int | str, kind: str, files: list[tuple[str, bytes]], sheet: bytes | None = None
):
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    if sheet is not None:
        parts.append(("sheet", ("sheet.csv", sheet, "text/csv")))
    return http.post("/api/imports", data={"cohort": str(cohort), "kind": kind}, files=parts, timeout=120)


def _instances(orthanc: OrthancClient) -> int:
    return int(orthanc.statistics()["CountInstances"])


def _cohort_items(http: httpx.Client, cohort_id: int) -> int:
    return int(http.get(f"/api/cohorts/{cohort_id}").json()["items"])


def _canary_files(tmp_path: Path) -> list[tuple[str, bytes]]:
    """pydicom's CT and MR test files and a small phantom CT series, each with a planted identity."""
    files = []
    for name in ("CT_small.dcm", "MR_small.dcm"):
        ds = pydicom.dcmread(get_testdata_file(name))
        ds.PatientID, ds.PatientName = CANARY_ID, CANARY_NAME
        buffer = io.BytesIO()
        ds.save_as(buffer)
        files.append((name, buffer.getvalue()))
    patient = generate_patient("chest-ct", 4242, tmp_path / "phantom", shape=(4, 32, 32))
    for path in patient.dicom_files:
        ds = pydicom.dcmread(path)
        ds.PatientID, ds.PatientName = CANARY_ID, CANARY_NAME
        buffer = io.BytesIO()
        ds.save_as(buffer)
        files.append((path.name, buffer.getvalue()))
    return files


@pytest.fixture(scope="module")
def dicom_import(server_url: str, intake: dict[str, Any], orthanc: OrthancClient, tmp_path_factory):
    files = _canary_files(tmp_path_factory.mktemp("canary"))
    with client_for(server_url, intake["admin"]) as http:
        before = _instances(orthanc)
        reply = _import(http, "intake", "dicom", files)
        assert reply.status_code == 202, reply.text
        report = _finished(http, reply.json()["id"])
    return {"report": report, "files": files, "before": before, "after": _instances(orthanc)}


def test_a_dicom_import_lands_de_identified_in_the_cohort(dicom_import, intake, orthanc: OrthancClient, server_url):
    report = dicom_import["report"]
    assert report["status"] == "done", report
    stored = [item for item in report["items"] if item.get("series_uid")]
    assert len(stored) == 3 and all(item["status"] == "stored" for item in stored)
    assert dicom_import["after"] - dicom_import["before"] == len(dicom_import["files"])
    with client_for(server_url, intake["member"]) as http:
        found = http.get("/dicom-web/series", params={"cohort": intake["id"]}).json()
    series_found = {entry["0020000E"]["Value"][0] for entry in found}
    assert {item["series_uid"] for item in stored} <= series_found
    for item in stored:
        for dataset in orthanc.retrieve_series(item["study_uid"], item["series_uid"]):
            raw = io.BytesIO()
            dataset.save_as(raw)
            assert CANARY_ID.encode() not in raw.getvalue() and b"Canary" not in raw.getvalue()
            assert dataset.PatientIdentityRemoved == "YES"


def test_an_identical_re_import_is_already_present_and_stores_nothing(dicom_import, intake, orthanc, server_url):
    with client_for(server_url, intake["admin"]) as http:
        before, items_before = _instances(orthanc), _cohort_items(http, intake["id"])
        reply = _import(http, intake["id"], "dicom", dicom_import["files"])
        assert reply.status_code == 202, reply.text
        report = _finished(http, reply.json()["id"])
        assert _cohort_items(http, intake["id"]) == items_before
    assert report["status"] == "done", report
    first = {(i["study_uid"], i["series_uid"]) for i in dicom_import["report"]["items"] if i.get("series_uid")}
    again = {(i["study_uid"], i["series_uid"]) for i in report["items"] if i.get("series_uid")}
    assert again == first
    assert all(item["status"] == "already present" for item in report["items"])
    assert _instances(orthanc) == before


def test_the_identity_map_is_the_importers_once(dicom_import, intake, server_url, admin):
    job_id = dicom_import["report"]["id"]
    assert "24 hours" in dicom_import["report"]["mapping_note"] and "restart" in dicom_import["report"]["mapping_note"]
    with client_for(server_url, admin) as http:
        assert http.get(f"/api/imports/{job_id}/mapping.csv").status_code == 403  # not the importer
    with client_for(server_url, intake["member"]) as http:
        assert http.get(f"/api/imports/{job_id}/mapping.csv").status_code == 403  # a member imports nothing
    with client_for(server_url, intake["admin"]) as http:
        reply = http.get(f"/api/imports/{job_id}/mapping.csv")
        assert reply.status_code == 200, reply.text
        rows = list(csv.DictReader(io.StringIO(reply.text)))
        assert {row["original_patient_id"] for row in rows} == {CANARY_ID}
        assert all(row["patient_id"] != CANARY_ID for row in rows)
        assert http.get(f"/api/imports/{job_id}/mapping.csv").status_code == 410
        assert http.get(f"/api/imports/{job_id}").json()["mapping"] == "taken"


def test_a_corrupt_file_is_refused_by_name_and_the_rest_is_stored(intake, orthanc, server_url):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.75", "1.2.826.0.1.3680043.8.498.76"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.77"
    good = io.BytesIO()
    ds.save_as(good)
    with client_for(server_url, intake["admin"]) as http:
        before = _instances(orthanc)
        reply = _import(
            http, intake["id"], "dicom", [("broken.dcm", b"DICM but not really" * 10), ("ok.dcm", good.getvalue())]
        )
        report = _finished(http, reply.json()["id"])
    errors = [item for item in report["items"] if item.get("error")]
    assert [item["error"] for item in errors] == ["broken.dcm is not a readable DICOM file"]
    assert _instances(orthanc) == before + 1, report


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ({"a.dcm": b"x", "../../escape.dcm": b"y"}, "escape.dcm has a path that leaves the archive"),
        ({"zeros.dcm": bytes(6 * 1024**2)}, "zip bomb"),
    ],
    ids=["traversal-member", "zip-bomb"],
)
def test_a_hostile_zip_is_refused_naming_it_and_nothing_is_stored(intake, orthanc, server_url, members, expected):
    with client_for(server_url, intake["admin"]) as http:
        before, items, jobs = (
            _instances(orthanc),
            _cohort_items(http, intake["id"]),
            len(http.get("/api/imports").json()),
        )
        reply = _import(http, intake["id"], "dicom", [("upload.zip", _zip(members))])
        assert reply.status_code == 422, reply.text
        assert expected in reply.text and "upload.zip" in reply.text
        assert (_instances(orthanc), _cohort_items(http, intake["id"])) == (before, items)
        assert len(http.get("/api/imports").json()) == jobs


def _saved(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def test_a_batch_the_store_refuses_leaves_nothing_stored(intake, orthanc, server_url):
    """The second file puts another patient into the first import's study: the store refuses the batch, and the
    third file (a study of its own, fine alone) is not stored either."""
    first = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    first.StudyInstanceUID, first.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.81", "1.2.826.0.1.3680043.8.498.82"
    first.SOPInstanceUID = first.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.83"
    intruder = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    intruder.StudyInstanceUID, intruder.PatientID = first.StudyInstanceUID, "SOMEONE-ELSE"
    intruder.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.84"
    intruder.SOPInstanceUID = intruder.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.85"
    bystander = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    bystander.StudyInstanceUID, bystander.SeriesInstanceUID = (
        "1.2.826.0.1.3680043.8.498.86",
        "1.2.826.0.1.3680043.8.498.87",
    )
    bystander.SOPInstanceUID = bystander.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.88"
    with client_for(server_url, intake["admin"]) as http:
        assert (
            _finished(http, _import(http, intake["id"], "dicom", [("first.dcm", _saved(first))]).json()["id"])["status"]
            == "done"
        )
        before, items = _instances(orthanc), _cohort_items(http, intake["id"])
        files = [("intruder.dcm", _saved(intruder)), ("bystander.dcm", _saved(bystander))]
        report = _finished(http, _import(http, intake["id"], "dicom", files).json()["id"])
        assert (_instances(orthanc), _cohort_items(http, intake["id"])) == (before, items)
    assert report["status"] == "failed"
    assert "nothing was stored" in report["error"] and "another patient" in report["error"]


def test_a_refusal_in_a_later_chunk_removes_the_chunks_stored_before_it(intake, orthanc, server_url):
    """An import is stored chunk by chunk while the next files are read: a whole chunk of a new study is stored before
    the last file (another patient in an earlier import's study) is refused; nothing of the import stays."""
    from awesomme.services.imports import _PipelinedStore

    owner = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    owner.StudyInstanceUID, owner.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.91", "1.2.826.0.1.3680043.8.498.92"
    owner.SOPInstanceUID = owner.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.93"
    intruder = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    intruder.StudyInstanceUID, intruder.PatientID = owner.StudyInstanceUID, "SOMEONE-ELSE-2"
    intruder.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.94"
    intruder.SOPInstanceUID = intruder.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.95"
    files = []
    for number in range(_PipelinedStore.CHUNK):
        bystander = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
        bystander.StudyInstanceUID, bystander.SeriesInstanceUID = (
            "1.2.826.0.1.3680043.8.498.96",
            "1.2.826.0.1.3680043.8.498.97",
        )
        bystander.SOPInstanceUID = bystander.file_meta.MediaStorageSOPInstanceUID = (
            f"1.2.826.0.1.3680043.8.498.98.{number}"
        )
        bystander.InstanceNumber = number + 1
        files.append((f"bystander-{number}.dcm", _saved(bystander)))
    files.append(("intruder.dcm", _saved(intruder)))
    with client_for(server_url, intake["admin"]) as http:
        first = _finished(http, _import(http, intake["id"], "dicom", [("owner.dcm", _saved(owner))]).json()["id"])
        assert first["status"] == "done", first
        before, items = _instances(orthanc), _cohort_items(http, intake["id"])
        report = _finished(http, _import(http, intake["id"], "dicom", files).json()["id"])
        assert (_instances(orthanc), _cohort_items(http, intake["id"])) == (before, items)
    assert report["status"] == "failed" and "another patient" in report["error"], report


def test_the_journal_records_imports_without_patient_identity(dicom_import, intake, server_url, admin):
    with client_for(server_url, admin) as http:
        events = http.get("/api/audit", params={"action": "import.finish", "limit": 1000}).json()
    mine = [event for event in events if event["target"] == f"import {dicom_import['report']['id']}"]
    assert len(mine) == 1
    assert mine[0]["params"]["kind"] == "dicom" and mine[0]["params"]["series_stored"] == 3
    assert mine[0]["actor"] == intake["admin"].username
    assert CANARY_ID not in str(events) and "Canary" not in str(events)


COMPRESSED = (
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_bigendian.dcm",
)


def test_compressed_transfer_syntaxes_are_imported_with_their_pixels_and_a_secondary_capture_is_refused(
    intake, orthanc, server_url
):
    files = []
    for number, name in enumerate(COMPRESSED, start=1):
        ds = pydicom.dcmread(get_testdata_file(name))
        # Fresh UIDs: each file its own study (MR_small and its variants share theirs).
        ds.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.9{number}1"
        ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.9{number}2"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.8.498.9{number}3"
        files.append((name, _saved(ds)))
    files.append(("JPEG2000.dcm", Path(get_testdata_file("JPEG2000.dcm")).read_bytes()))
    with client_for(server_url, intake["admin"]) as http:
        report = _finished(http, _import(http, intake["id"], "dicom", files).json()["id"])
    assert report["status"] == "done", report
    errors = [item["error"] for item in report["items"] if item.get("error")]
    assert len(errors) == 1 and errors[0].startswith("JPEG2000.dcm: "), errors
    stored = [item for item in report["items"] if item.get("series_uid")]
    assert len(stored) == len(COMPRESSED)
    expected = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array
    for item in stored:
        (dataset,) = orthanc.retrieve_series(item["study_uid"], item["series_uid"])
        assert np.array_equal(dataset.pixel_array, expected)


def test_an_oversize_upload_is_refused(intake, server_url):
    with client_for(server_url, intake["admin"]) as http:
        reply = _import(http, intake["id"], "dicom", [("huge.dcm", bytes(9_000_000))])
    assert reply.status_code == 413


def test_only_the_cohorts_admins_import(intake, cohorts: Cohorts, server_url):
    with client_for(server_url, intake["member"]) as http:
        assert _import(http, intake["id"], "dicom", [("a.dcm", b"x")]).status_code == 403
    outsider = create_account("intake.outsider")
    with client_for(server_url, intake["admin"]) as http:  # admin of intake, not of beta
        assert _import(http, cohorts.beta, "dicom", [("a.dcm", b"x")]).status_code == 404
        assert _import(http, "beta", "dicom", [("a.dcm", b"x")]).status_code == 404
    with client_for(server_url, outsider) as http:
        assert _import(http, intake["id"], "dicom", [("a.dcm", b"x")]).status_code == 403


# -- legacy NIfTI ----------------------------------------------------------------------------------------------
def _oblique_affine() -> np.ndarray:
    theta = np.deg2rad(10.0)
    rotation = np.array([[1, 0, 0], [0, np.cos(theta), -np.sin(theta)], [0, np.sin(theta), np.cos(theta)]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.9, 0.8, 2.5])
    affine[0, :3] *= -1  # left-right flipped
    affine[:3, 3] = [20.0, -15.0, 40.0]
    return affine


def _nifti(data: np.ndarray, affine: np.ndarray) -> bytes:
    image = nib.Nifti1Image(data, affine)
    image.set_qform(affine, 1)
    image.set_sform(affine, 1)
    return gzip.compress(image.to_bytes())


def _dcm2niix_volume(orthanc: OrthancClient, study: str, series: str, tmp_path: Path) -> nib.Nifti1Image:
    """The stored series as the pinned dcm2niix reads it (the files exported from Orthanc), in closest canonical
    orientation (the same voxels and world mapping whichever axis order dcm2niix chose)."""
    import dcm2niix

    exported, converted = tmp_path / "exported", tmp_path / "dcm2niix"
    exported.mkdir()
    converted.mkdir()
    hits = orthanc.find("Series", {"StudyInstanceUID": [study], "SeriesInstanceUID": [series]})
    for number, orthanc_id in enumerate(hits[0]["Instances"]):
        (exported / f"{number}.dcm").write_bytes(orthanc.instance_file(orthanc_id))
    run = subprocess.run(
        [dcm2niix.bin, "-z", "n", "-b", "n", "-f", "series", "-o", str(converted), str(exported)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    outputs = sorted(converted.glob("*.nii"))
    assert run.returncode == 0 and len(outputs) == 1, run.stdout + run.stderr
    return nib.as_closest_canonical(nib.load(outputs[0]))


SHEET_HEADER = "image,PatientID,Modality,PatientSex,StudyDate,SeriesDescription,mask,label_map,reader,algorithm_type\n"


def test_a_nifti_import_stores_the_image_and_its_mask_as_a_seg_with_the_same_voxels(
    intake, orthanc, server_url, tmp_path: Path
):
    rng = np.random.default_rng(3)
    image = rng.integers(-500, 800, size=(28, 24, 5)).astype(np.int16)
    mask = np.zeros(image.shape, np.uint8)
    mask[6:15, 4:12, 1:4] = 1
    affine = _oblique_affine()
    sheet = (
        SHEET_HEADER
        + "case1.nii.gz,STUDY-SUBJ-01,CT,F,2018-05-06,Legacy CT,"
        + 'case1_mask.nii.gz,"{""1"": ""tumour""}",Dr Reader,MANUAL\n'
    )
    files = [("case1.nii.gz", _nifti(image, affine)), ("case1_mask.nii.gz", _nifti(mask, affine))]
    with client_for(server_url, intake["admin"]) as http:
        reply = _import(http, intake["id"], "nifti", files, sheet.encode())
        assert reply.status_code == 202, reply.text
        report = _finished(http, reply.json()["id"])
        assert report["status"] == "done", report
        image_item = next(item for item in report["items"] if item.get("file") == "case1.nii.gz")
        mask_item = next(item for item in report["items"] if item.get("seg_uid"))
        assert image_item["status"] == "stored", report
        again = _finished(http, _import(http, intake["id"], "nifti", files, sheet.encode()).json()["id"])
    assert {item.get("status") for item in again["items"]} == {"already present"}
    study, series = image_item["study_uid"], image_item["series_uid"]
    sources = sorted(orthanc.retrieve_series(study, series), key=lambda ds: int(ds.InstanceNumber))
    assert sources[0].PatientID == "STUDY-SUBJ-01"  # the sheet's pseudonym survives
    assert sources[0].PatientIdentityRemoved == "YES" and "NIfTI" in sources[0].DerivationDescription
    if shutil.which("dciodvfy"):
        stored = tmp_path / "stored.dcm"
        sources[0].save_as(stored)
        check = subprocess.run(["dciodvfy", str(stored)], capture_output=True, text=True, check=False)
        assert [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")] == []
    assert np.array_equal(np.stack([ds.pixel_array for ds in sources], axis=-1), np.transpose(image, (1, 0, 2)))
    read_back = _dcm2niix_volume(orthanc, study, series, tmp_path)
    original = nib.as_closest_canonical(nib.Nifti1Image(image, affine))
    assert np.allclose(read_back.affine, original.affine, rtol=0, atol=1e-3), (read_back.affine, original.affine)
    assert np.array_equal(np.asarray(read_back.dataobj), np.asarray(original.dataobj))
    seg_dataset = orthanc.retrieve_series(study, mask_item["seg_uid"])[0]
    seg = hd.seg.Segmentation.from_dataset(seg_dataset)
    voxels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[str(ds.SOPInstanceUID) for ds in sources], combine_segments=True
    )
    assert np.array_equal(np.transpose(voxels, (2, 1, 0)) > 0, mask > 0)


def test_a_bad_sheet_row_is_refused_naming_it_and_nothing_is_stored(intake, orthanc, server_url):
    sheet = SHEET_HEADER + "case9.nii.gz,SUBJ-9,PET,,,,,,,\n"
    files = [("case9.nii.gz", _nifti(np.zeros((4, 4, 2), np.int16), np.eye(4)))]
    with client_for(server_url, intake["admin"]) as http:
        before = _instances(orthanc)
        reply = _import(http, intake["id"], "nifti", files, sheet.encode())
    assert reply.status_code == 422
    assert "sheet row 2, column Modality" in reply.text
    assert _instances(orthanc) == before


def test_a_non_integer_ct_is_refused_per_file_with_its_reason(intake, orthanc, server_url):
    sheet = SHEET_HEADER + "float.nii.gz,SUBJ-8,CT,,,,,,,\n"
    files = [("float.nii.gz", _nifti(np.full((4, 4, 2), 0.5, np.float32), np.eye(4)))]
    with client_for(server_url, intake["admin"]) as http:
        before = _instances(orthanc)
        report = _finished(http, _import(http, intake["id"], "nifti", files, sheet.encode()).json()["id"])
    assert [item["error"] for item in report["items"]] == [
        "float.nii.gz (sheet row 2, image): a CT image with non-integer values (Hounsfield units are integers)"
    ]
    assert _instances(orthanc) == before


def test_the_cli_imports_a_folder_through_the_api_with_a_personal_token(intake, server_url, tmp_path: Path):
    with client_for(server_url, intake["admin"]) as http:
        reply = http.post("/api/users/me/tokens", json={"name": "cli import", "expires_in_days": 1})
        assert reply.status_code == 201, reply.text
        token = reply.json()["token"]
    folder = generate_patient("chest-ct", 4343, tmp_path / "patient", shape=(3, 32, 32)).dicom_files[0].parent
    mapping = tmp_path / "map.csv"
    command = [sys.executable, "-m", "awesomme.cli", "import", "dicom", str(folder), "--cohort", "intake"]
    command += ["--server", server_url, "--mapping", str(mapping)]
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "AWESOMME_TOKEN": token}, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done" in done.stdout and "stored" in done.stdout
    assert mapping.stat().st_mode & 0o077 == 0
    assert "original_patient_id" in mapping.read_text()


def test_an_import_cut_short_by_a_restart_reads_as_failed(intake, server_url):
    """A job row left running by an earlier server process (its thread is gone) is not reported running forever."""
    with session_scope() as session:
        user = session.scalar(select(User).where(User.username == intake["admin"].username))
        assert user is not None
        job = ImportJob(user_id=user.id, cohort_id=intake["id"], kind="dicom", status="running", files=3,
                        done_files=1, items=[], error="", mapping_state="none")  # fmt: skip
        session.add(job)
        session.flush()
        job_id = job.id
    with client_for(server_url, intake["admin"]) as http:
        report = http.get(f"/api/imports/{job_id}").json()
    assert report["status"] == "failed" and "server stopped" in report["error"]
