"""Importing earlier segmentations, interpolating between slices, deleting and reviewing SEGs: real Orthanc, real
server, files made from a phantom's truth as desktop tools write them."""

from __future__ import annotations

import gzip
import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
import nibabel as nib
import numpy as np
import pydicom
import pytest
from sqlalchemy import func, select

from awesomme.analysis.interpolation import dice, segmented_slices
from awesomme.core.config import Settings
from awesomme.core.db import session_scope
from awesomme.dicom.seg import decode_seg
from awesomme.dicom.volumes import sort_by_position
from awesomme.models import AuditEvent, Segmentation, SegmentationOrigin
from awesomme.orthanc.client import OrthancClient
from tests.dicom_checks import dciodvfy_errors
from tests.integration.conftest import (
    UPLOAD_MAX_BYTES,
    Account,
    Cohorts,
    StoredPatient,
    attach_to_cohort,
    client_for,
    leftovers,
    store_patient,
)
from tests.seg_files import nifti_bytes, nrrd_bytes, rtstruct_bytes, seg_bytes, truth_mask

NAMES = {1: "tumour", 2: "bone"}


@pytest.fixture(scope="module")
def knee(
    orthanc: OrthancClient, server_url: str, admin: Account, cohorts: Cohorts, tmp_path_factory: pytest.TempPathFactory
) -> StoredPatient:
    """An MR series of cohort alpha."""
    stored = store_patient(orthanc, "osteosarcoma-mr", 611, tmp_path_factory.mktemp("import"))
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[stored.patient.study_uid])
    return stored


def _truth(stored: StoredPatient, name: str) -> np.ndarray:
    return truth_mask(stored.patient.truth[name])


def _two_labels(stored: StoredPatient) -> np.ndarray:
    label_map = np.zeros(stored.patient.shape, np.uint8)
    label_map[_truth(stored, "bone")] = 2
    label_map[_truth(stored, "tumour")] = 1
    return label_map


def _import(
    server_url: str, account: Account, series_uid: str, filename: str, data: bytes, **fields: str
) -> httpx.Response:
    with client_for(server_url, account) as client:
        return client.post(
            "/api/segmentations/import",
            files={"file": (filename, data, "application/octet-stream")},
            data={"series_uid": series_uid, **fields},
        )


def _stored_seg(orthanc: OrthancClient, stored: StoredPatient, seg_uid: str) -> pydicom.Dataset:
    return orthanc.retrieve_series(stored.patient.study_uid, seg_uid)[0]


def _decoded(orthanc: OrthancClient, stored: StoredPatient, seg_uid: str) -> np.ndarray:
    return decode_seg(_stored_seg(orthanc, stored, seg_uid), sort_by_position(stored.datasets)).label_map


def _counts(orthanc: OrthancClient) -> tuple[int, int]:
    """SEG series in Orthanc, segmentation rows in the platform DB."""
    with session_scope() as session:
        rows = session.scalar(select(func.count()).select_from(Segmentation))
    return len(orthanc.find_series(("SEG",))), int(rows or 0)


def _files(stored: StoredPatient) -> dict[str, tuple[str, bytes, dict[str, str]]]:
    """The truth (tumour 1, bone 2) in each format, with the fields that name its segments."""
    truth, affine = _two_labels(stored), stored.patient.affine
    source = sort_by_position(stored.datasets)
    label_map = {"label_map": json.dumps({"1": "tumour", "2": "bone"})}
    masks = {"tumour": truth == 1, "bone": truth == 2}
    return {
        "nifti": ("tumour-bone.nii.gz", nifti_bytes(truth, affine), label_map),
        "nrrd": ("tumour-bone.seg.nrrd", nrrd_bytes(truth, affine, NAMES), {}),
        "dicom-seg": ("seg.dcm", seg_bytes(source, truth, NAMES), {}),
        "rtstruct": ("rtstruct.dcm", rtstruct_bytes(source, masks), {}),
    }


@pytest.mark.parametrize("kind", ["nifti", "nrrd", "dicom-seg", "rtstruct"])
def test_each_format_becomes_a_seg_whose_mask_is_the_truth(
    kind: str, knee: StoredPatient, cohorts: Cohorts, server_url: str, orthanc: OrthancClient, tmp_path: Path
) -> None:
    filename, data, fields = _files(knee)[kind]
    reply = _import(
        server_url,
        cohorts.alpha_member,
        knee.patient.series_uid,
        filename,
        data,
        description=f"Earlier work ({kind})",
        reader="Doe^Jane",
        **fields,
    )
    assert reply.status_code == 201, reply.text
    answer = reply.json()
    assert answer["format"] == kind
    assert [(s["number"], s["label"]) for s in answer["segments"]] == [(1, "tumour"), (2, "bone")]
    assert np.array_equal(_decoded(orthanc, knee, answer["seg_uid"]), _two_labels(knee))

    seg = _stored_seg(orthanc, knee, answer["seg_uid"])
    assert seg.SeriesDescription == f"Earlier work ({kind})"
    assert str(seg.ContentCreatorName) == "Doe^Jane"
    assert [item.SegmentLabel for item in seg.SegmentSequence] == ["tumour", "bone"]
    assert {item.SegmentAlgorithmType for item in seg.SegmentSequence} == {"MANUAL"}
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == knee.patient.series_uid
    seg.save_as(tmp_path / "seg.dcm")
    assert dciodvfy_errors(tmp_path / "seg.dcm") == []

    with client_for(server_url, cohorts.alpha_admin) as client:
        listed = client.get("/api/segmentations", params={"series_uid": knee.patient.series_uid}).json()
    item = next(entry for entry in listed if entry["seg_uid"] == answer["seg_uid"])
    assert (item["author"], item["created_by"], item["origin"], item["tag"]) == (
        "Doe^Jane",
        "alpha.member",
        "import",
        "imported",
    )
    assert item["reviews"] == []
    with session_scope() as session:
        origin = session.get(SegmentationOrigin, answer["seg_uid"])
        assert origin is not None and origin.source_format == kind and origin.source_name == filename
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "segmentation.import", AuditEvent.target == answer["seg_uid"])
        ).one()
        assert (event.actor, event.outcome, event.params["format"]) == ("alpha.member", "success", kind)


def test_an_automatic_single_label_import_names_its_algorithm(
    knee: StoredPatient, cohorts: Cohorts, server_url: str, orthanc: OrthancClient
) -> None:
    tumour = _truth(knee, "tumour").astype(np.uint8)
    reply = _import(
        server_url,
        cohorts.alpha_admin,
        knee.patient.series_uid,
        "t.nii",
        nifti_bytes(tumour, knee.patient.affine, compress=False),
        segment_label="Tumour",
        algorithm_type="AUTOMATIC",
        algorithm_name="nnU-Net knee",
    )
    assert reply.status_code == 201, reply.text
    seg = _stored_seg(orthanc, knee, reply.json()["seg_uid"])
    segment = seg.SegmentSequence[0]
    assert (segment.SegmentLabel, segment.SegmentAlgorithmType) == ("Tumour", "AUTOMATIC")
    assert segment.SegmentAlgorithmName == "nnU-Net knee"
    assert np.array_equal(_decoded(orthanc, knee, reply.json()["seg_uid"]), tumour)


def test_a_nifti_in_another_axis_order_is_reoriented_not_refused(
    knee: StoredPatient, cohorts: Cohorts, server_url: str, orthanc: OrthancClient
) -> None:
    truth = _two_labels(knee)
    image = nib.Nifti1Image(np.ascontiguousarray(truth.transpose(2, 1, 0)), knee.patient.affine)
    turned = image.as_reoriented(np.array([[1, 1], [0, -1], [2, -1]]))  # rows first, two axes flipped
    reply = _import(server_url, cohorts.alpha_member, knee.patient.series_uid, "turned.nii.gz", turned.to_bytes())
    assert reply.status_code == 201, reply.text
    assert np.array_equal(_decoded(orthanc, knee, reply.json()["seg_uid"]), truth)


def _shifted(affine: np.ndarray, what: str) -> np.ndarray:
    changed = affine.copy()
    if what == "spacing":
        changed[:3, 2] *= 1.05
    elif what == "orientation":
        angle = np.radians(3.0)
        turn = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
        changed[:3, :3] = turn @ affine[:3, :3]
    elif what == "origin":
        changed[:3, 3] += [2.0, 0.0, 0.0]
    return changed


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("size", "size differs: the file has 160 x 160 x 23 voxels, the series 160 x 160 x 24"),
        ("spacing", "spacing differs by {slice_5_percent:.4g} mm: the file has ("),
        ("orientation", "orientation differs by 3 degrees"),
        ("origin", "origin differs by 2 mm"),
    ],
)
def test_each_geometry_mismatch_gets_its_422(
    what: str, message: str, knee: StoredPatient, cohorts: Cohorts, server_url: str, orthanc: OrthancClient
) -> None:
    truth = _two_labels(knee)[1:] if what == "size" else _two_labels(knee)
    before = _counts(orthanc)
    data = nifti_bytes(truth, _shifted(knee.patient.affine, what))
    reply = _import(server_url, cohorts.alpha_member, knee.patient.series_uid, "x.nii.gz", data)
    assert reply.status_code == 422
    message = message.format(slice_5_percent=knee.patient.spacing[0] * 0.05)
    assert reply.json()["detail"].startswith(message), reply.json()["detail"]
    assert _counts(orthanc) == before


def test_files_of_another_series_or_frame_of_reference_get_a_422(
    knee: StoredPatient,
    cohorts: Cohorts,
    server_url: str,
    orthanc: OrthancClient,
    tmp_path: Path,
) -> None:
    other = store_patient(orthanc, "osteosarcoma-mr", 612, tmp_path / "other")
    other_source = sort_by_position(other.datasets)
    seg = seg_bytes(other_source, _two_labels(other), NAMES)
    reply = _import(server_url, cohorts.alpha_member, knee.patient.series_uid, "seg.dcm", seg)
    assert reply.status_code == 422 and "frame of reference" in reply.json()["detail"]

    masks = {"tumour": _truth(knee, "tumour")}
    elsewhere = rtstruct_bytes(knee.datasets, masks, frame_uid="1.2.826.0.1.3680043.2.1125.1")
    reply = _import(server_url, cohorts.alpha_member, knee.patient.series_uid, "rt.dcm", elsewhere)
    assert reply.status_code == 422 and "frame of reference" in reply.json()["detail"]

    rtstruct = pydicom.dcmread(io.BytesIO(rtstruct_bytes(knee.datasets, masks)))
    series_item = rtstruct.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0]
    series_item.RTReferencedSeriesSequence[0].SeriesInstanceUID = other.patient.series_uid
    stream = io.BytesIO()
    rtstruct.save_as(stream)
    reply = _import(server_url, cohorts.alpha_member, knee.patient.series_uid, "rt.dcm", stream.getvalue())
    assert reply.status_code == 422
    assert reply.json()["detail"] == (
        f"the RTSTRUCT references series {other.patient.series_uid}, not {knee.patient.series_uid}"
    )


def test_bad_files_get_a_clear_4xx_and_leave_nothing_behind(
    knee: StoredPatient, cohorts: Cohorts, server_url: str, orthanc: OrthancClient, platform: Settings
) -> None:
    series = knee.patient.series_uid
    good = nifti_bytes(_two_labels(knee), knee.patient.affine)
    before = _counts(orthanc)
    cases: list[tuple[str, bytes, dict[str, str], int, str]] = [
        ("empty.nii.gz", nifti_bytes(np.zeros(knee.patient.shape, np.uint8), knee.patient.affine), {}, 422, "empty"),
        ("cut.nii.gz", good[: len(good) // 2], {}, 422, "truncated"),
        ("text.nii.gz", gzip.compress(b"not an image at all" * 100), {}, 422, "not a readable NIfTI"),
        ("labels.nrrd", good, {}, 422, "not a readable NRRD"),
        ("labels.nii.gz", good, {"format": "rtstruct"}, 422, "not a readable DICOM"),
        ("seg.dcm", b"DICM" * 100, {}, 422, "not a readable DICOM"),
        ("huge.nii", bytes(UPLOAD_MAX_BYTES + 1), {}, 413, ""),
        ("nothing.nii.gz", b"", {}, 422, "empty"),
    ]
    for filename, data, fields, status, phrase in cases:
        reply = _import(server_url, cohorts.alpha_member, series, filename, data, **fields)
        assert reply.status_code == status, (filename, reply.text)
        assert phrase in reply.text, (filename, reply.text)
    assert _counts(orthanc) == before
    assert leftovers(platform) == []
    with session_scope() as session:
        failures = session.scalars(
            select(AuditEvent.outcome).where(
                AuditEvent.action == "segmentation.import", AuditEvent.outcome != "success"
            )
        ).all()
    assert len(failures) >= len(cases) - 1  # the 413 may be answered before the route is reached


def test_who_may_import_delete_and_review(
    knee: StoredPatient, cohorts: Cohorts, server_url: str, orthanc: OrthancClient, admin: Account
) -> None:
    series = knee.patient.series_uid
    data = nifti_bytes(_truth(knee, "tumour").astype(np.uint8), knee.patient.affine)
    # Someone in another cohort does not see the series at all; someone in no cohort may not import.
    assert _import(server_url, cohorts.beta_member, series, "t.nii.gz", data).status_code == 404
    assert _import(server_url, cohorts.loner, series, "t.nii.gz", data).status_code == 403

    by_admin = _import(server_url, cohorts.alpha_admin, series, "t.nii.gz", data, segment_label="tumour")
    by_member = _import(server_url, cohorts.alpha_member, series, "t.nii.gz", data, segment_label="tumour")
    assert by_admin.status_code == by_member.status_code == 201
    admins_seg, members_seg = by_admin.json()["seg_uid"], by_member.json()["seg_uid"]

    with client_for(server_url, cohorts.alpha_member) as member, client_for(server_url, cohorts.beta_member) as beta:
        # Reviews: members of its cohort; others do not see the SEG.
        reply = member.post(f"/api/segmentations/{admins_seg}/review", json={"status": "rejected", "comment": "edge"})
        assert reply.status_code == 201, reply.text
        assert beta.post(f"/api/segmentations/{admins_seg}/review", json={"status": "accepted"}).status_code == 404
        assert member.post(f"/api/segmentations/{admins_seg}/review", json={"status": "maybe"}).status_code == 422
        listed = member.get("/api/segmentations", params={"series_uid": series}).json()
        reviews = next(item["reviews"] for item in listed if item["seg_uid"] == admins_seg)
        assert [(r["reviewer"], r["status"], r["comment"]) for r in reviews] == [("alpha.member", "rejected", "edge")]

        # Deleting: a member may not delete another's SEG (403), another cohort's member does not see it (404).
        assert member.delete(f"/api/segmentations/{admins_seg}").status_code == 403
        assert beta.delete(f"/api/segmentations/{admins_seg}").status_code == 404
        assert beta.delete(f"/api/segmentations/{members_seg}").status_code == 404
        assert member.delete(f"/api/segmentations/{members_seg}").status_code == 200  # its author
        assert member.delete(f"/api/segmentations/{members_seg}").status_code == 404
    with client_for(server_url, cohorts.alpha_admin) as cohort_admin:
        assert cohort_admin.delete(f"/api/segmentations/{admins_seg}").status_code == 200
        listed = cohort_admin.get("/api/segmentations", params={"series_uid": series}).json()
    assert not {admins_seg, members_seg} & {item["seg_uid"] for item in listed}
    assert not {admins_seg, members_seg} & {str(hit.SeriesInstanceUID) for hit in orthanc.find_series(("SEG",))}
    with session_scope() as session:
        assert session.get(Segmentation, admins_seg) is None and session.get(SegmentationOrigin, members_seg) is None
        events = session.execute(
            select(AuditEvent.actor, AuditEvent.outcome, AuditEvent.target).where(
                AuditEvent.action == "segmentation.delete"
            )
        ).all()
    assert ("alpha.member", "success", members_seg) in events
    assert ("alpha.admin", "success", admins_seg) in events
    assert ("alpha.member", "denied", "") in [(a, o, "") for a, o, _ in events]


def _sparse(truth: np.ndarray, step: int) -> np.ndarray:
    labelled = segmented_slices(truth)
    sparse = np.zeros_like(truth)
    for k in set(labelled[::step]) | {labelled[0], labelled[-1]}:
        sparse[k] = truth[k]
    return sparse


@pytest.fixture(scope="module")
def table3_knee(
    orthanc: OrthancClient, server_url: str, admin: Account, cohorts: Cohorts, tmp_path_factory: pytest.TempPathFactory
) -> StoredPatient:
    """A 60x352x352 MR series (one of the paper's Table 3 shapes) in cohort alpha."""
    stored = store_patient(orthanc, "osteosarcoma-mr", 101, tmp_path_factory.mktemp("table3"), shape=(60, 352, 352))
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[stored.patient.study_uid])
    return stored


def test_importing_a_60_slice_mask_is_timed(
    table3_knee: StoredPatient, cohorts: Cohorts, server_url: str, orthanc: OrthancClient
) -> None:
    data = nifti_bytes(_two_labels(table3_knee), table3_knee.patient.affine)
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        reply = _import(server_url, cohorts.alpha_member, table3_knee.patient.series_uid, "t.nii.gz", data)
        seconds.append(time.perf_counter() - started)
        assert reply.status_code == 201, reply.text
        print(f"import of a 60x352x352 two-label NIfTI mask: {seconds[-1]:.2f} s, phases {reply.json()['seconds']}")
    assert set(reply.json()["seconds"]) == {"series", "read", "build", "store"}
    assert np.array_equal(_decoded(orthanc, table3_knee, reply.json()["seg_uid"]), _two_labels(table3_knee))


@pytest.mark.parametrize(("step", "least"), [(2, 0.95), (4, 0.90)])
def test_interpolation_fills_sparse_slices_to_a_high_dice(
    step: int, least: float, table3_knee: StoredPatient, cohorts: Cohorts, server_url: str, orthanc: OrthancClient
) -> None:
    truth = _truth(table3_knee, "tumour")
    sparse = _sparse(truth, step)
    series = table3_knee.patient.series_uid
    data = nifti_bytes(sparse.astype(np.uint8), table3_knee.patient.affine)
    reply = _import(server_url, cohorts.alpha_member, series, "sparse.nii.gz", data, segment_label="tumour")
    assert reply.status_code == 201, reply.text
    sparse_uid = reply.json()["seg_uid"]
    body: dict[str, Any] = {"series_uid": series, "seg_uid": sparse_uid, "segment_number": 1}
    with client_for(server_url, cohorts.beta_member) as beta:
        assert beta.post("/api/segmentations/interpolate", json=body).status_code == 404
    with client_for(server_url, cohorts.alpha_member) as member:
        reply = member.post("/api/segmentations/interpolate", json=body)
        assert reply.status_code == 201, reply.text
        assert member.post("/api/segmentations/interpolate", json={**body, "segment_number": 2}).status_code == 422
        listed = member.get("/api/segmentations", params={"series_uid": series}).json()
    answer = reply.json()
    filled = _decoded(orthanc, table3_knee, answer["seg_uid"]) == 1
    score = dice(filled, truth)
    print(f"interpolation, one slice in {step} labelled: Dice {dice(sparse, truth):.3f} before, {score:.3f} after")
    assert score >= least
    seg = _stored_seg(orthanc, table3_knee, answer["seg_uid"])
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert str(seg.ContentCreatorName) == "alpha.member"  # the author of the sparse labels is kept
    item = next(entry for entry in listed if entry["seg_uid"] == answer["seg_uid"])
    assert (item["derived_from"], item["algorithm_type"], item["author"]) == (
        sparse_uid,
        "SEMIAUTOMATIC",
        "alpha.member",
    )
