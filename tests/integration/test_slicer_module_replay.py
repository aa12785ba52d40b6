"""3D Slicer's MONAI Label module from another machine, replayed request by request (``tests/integration/
slicer_module.py``) against the real server and Orthanc, from a member's account: connect, Next Sample (the file
opens in SimpleITK), Run, correct, Submit Label. The label is the member's, corrects the model (SEMIAUTOMATIC),
holds the segment number its SEG holds, and agreement compares it with the model's prediction, segment by segment.
Both the module Slicer installs today and MONAI Label 0.8.5's (which sends no model name with a label)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from awesomme.dicom.seg import decode_seg
from awesomme.dicom.volumes import sort_by_position
from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import (
    Account,
    Cohorts,
    StoredPatient,
    attach_to_cohort,
    bind_model,
    client_for,
    create_account,
    store_patient,
)
from tests.integration.slicer_module import SlicerModule

MODEL = "everything_mr"  # labels every voxel "tumour": what the correction changes is known exactly


def _stage(
    server_url: str, admin: Account, orthanc: OrthancClient, version: str, out: Path
) -> tuple[Account, StoredPatient]:
    """A cohort of one MR series, a member of it, and the test model bound to it (and to alpha, as elsewhere)."""
    member = create_account(f"slicer.{version.replace('.', '')}")
    name = f"slicer-replay-{version}"
    reply = httpx.post(
        f"{server_url}/api/cohorts",
        json={"name": name, "description": name, "identified": True},
        headers=admin.headers(server_url),
    )
    assert reply.status_code == 201, reply.text
    cohort = int(reply.json()["id"])
    url = f"{server_url}/api/cohorts/{cohort}/members/{member.username}"
    assert httpx.put(url, json={"role": "member"}, headers=admin.headers(server_url)).status_code == 200
    stored = store_patient(orthanc, "osteosarcoma-mr", 4500 + len(version), out)
    attach_to_cohort(server_url, admin, cohort, studies=[stored.patient.study_uid])
    bind_model(server_url, admin, MODEL, ["alpha", name])
    return member, stored


def _corrected(mask_file: Path, sample_file: Path, values: dict[str, int], out: Path) -> tuple[Path, np.ndarray]:
    """What the person does in Slicer: keep the model's tumour on the first half of the slices only, draw a box in
    another segment of the editor on the second half, then export the editor's segments as one label map, each
    segment's voxels holding its place in the segment list (``values``). Returns the file and the drawn map, valued
    by segment name order: 1 the tumour, 2 the other structure."""
    mask = sitk.ReadImage(str(mask_file))
    image = sitk.ReadImage(str(sample_file))
    tumour = sitk.GetArrayFromImage(mask) > 0  # (slice, row, column)
    half = tumour.shape[0] // 2
    tumour[half:] = False
    other = np.zeros_like(tumour)
    other[half + 1 : half + 3, 10:20, 12:24] = True
    exported = np.zeros(tumour.shape, np.uint8)
    exported[tumour] = values["tumour"]
    exported[other] = values["other"]
    label = sitk.GetImageFromArray(exported)
    label.CopyInformation(image)
    sitk.WriteImage(label, str(out), useCompression=True)
    return out, tumour.astype(np.uint8) + 2 * other.astype(np.uint8)


@pytest.mark.parametrize("version", ["head", "0.8.5"])
def test_the_modules_session_saves_the_members_correction_of_the_model(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path: Path, version: str
) -> None:
    member, stored = _stage(server_url, admin, orthanc, version, tmp_path / "patient")
    series_uid = stored.patient.series_uid
    slicer = SlicerModule(server_url, member.username, member.password, tmp_path, version)

    info = slicer.connect()
    assert MODEL in info["models"]
    labels: list[str] = list(info["labels"])  # the editor's segments, in this order
    other = labels[-1]
    values = {"tumour": labels.index("tumour") + 1, "other": len(labels)}
    assert other != "tumour" and values["other"] > 2, labels  # a value the SEG numbers otherwise (a gap before it)

    sample, sample_file = slicer.next_sample("random")
    assert sample["id"] == series_uid and sample_file.name == f"{series_uid}.nii.gz"
    image = sitk.ReadImage(str(sample_file))
    assert image.GetSize() == (int(stored.datasets[0].Columns), int(stored.datasets[0].Rows), len(stored.datasets))

    mask_file, answer = slicer.run(MODEL, series_uid)
    assert mask_file.suffix == ".nrrd" and isinstance(answer, dict)
    mask = sitk.ReadImage(str(mask_file))
    assert mask.GetSize() == image.GetSize() and mask.GetPixelID() == sitk.sitkUInt8
    assert mask.GetOrigin() == pytest.approx(image.GetOrigin(), abs=1e-3)

    label_file, drawn = _corrected(mask_file, sample_file, values, tmp_path / "label.nii.gz")
    saved = slicer.submit_label(series_uid, label_file, labels, MODEL)
    seg_uid = str(saved["label"])

    with client_for(server_url, member) as http:
        listing = {
            item["seg_uid"]: item for item in http.get("/api/segmentations", params={"series_uid": series_uid}).json()
        }
        agreement = http.get("/api/agreement/segmentations", params={"series_uid": series_uid})
    item = listing[seg_uid]
    assert (item["role"], item["created_by"], item["algorithm_type"], item["model"]) == (
        "label",
        member.username,
        "SEMIAUTOMATIC",
        MODEL,
    )
    prediction = next(i for i in listing.values() if i["role"] == "prediction")
    assert item["derived_from"] == prediction["seg_uid"]
    # the listing numbers the segments as the SEG does: 1..N in the order of the file's values
    assert [(s["number"], s["label"]) for s in item["segments"]] == [(1, "tumour"), (2, other)]

    seg: pydicom.Dataset = orthanc.retrieve_series(stored.patient.study_uid, seg_uid)[0]
    assert [(int(s.SegmentNumber), str(s.SegmentLabel)) for s in seg.SegmentSequence] == [(1, "tumour"), (2, other)]
    assert str(seg.ContentCreatorName) == member.username
    content = decode_seg(seg, sort_by_position(stored.datasets))
    assert np.array_equal(content.label_map, drawn)  # the voxels the person drew, where they drew them

    assert agreement.status_code == 200, agreement.text
    pairs: list[dict[str, Any]] = agreement.json()["pairs"]
    pair = next(p for p in pairs if {p["author_a"], p["author_b"]} == {member.username, f"model:{MODEL}"})
    matched = {
        (p["segment_a"], p["segment_b"]): p
        for p in pairs
        if {p["author_a"], p["author_b"]} == {member.username, f"model:{MODEL}"}
    }
    mine_first = pair["author_a"] == member.username
    tumour_pair = matched[(1, 1)]
    assert tumour_pair["segment_type"] == "Neoplasm"
    kept, everything = int((drawn == 1).sum()), int(np.prod(drawn.shape))
    assert tumour_pair["dice"] == pytest.approx(2 * kept / (kept + everything), rel=1e-6)
    unmatched = matched[(2, None) if mine_first else (None, 2)]  # the model segments no such structure
    assert unmatched["dice"] == 0.0 and (unmatched["label_a"] if mine_first else unmatched["label_b"]) == other


def test_the_modules_original_label_is_the_models_newest_output(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path: Path
) -> None:
    """As stock MONAI Label names it: the image's id and the tag ``original``, a model's output's tag."""
    member, stored = _stage(server_url, admin, orthanc, "original", tmp_path / "patient")
    series_uid = stored.patient.series_uid
    slicer = SlicerModule(server_url, member.username, member.password, tmp_path)
    slicer.connect()
    slicer.run(MODEL, series_uid)
    names, path = slicer.original_label(series_uid)
    assert names == ["tumour"]
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    assert mask.shape == (len(stored.datasets), int(stored.datasets[0].Rows), int(stored.datasets[0].Columns))
    assert set(np.unique(mask)) == {1}  # the test model labels every voxel

    stranger = create_account("slicer.stranger")
    attach = httpx.post(
        f"{server_url}/api/cohorts",
        json={"name": "slicer-elsewhere", "description": "x"},
        headers=admin.headers(server_url),
    )
    assert attach.status_code == 201
    url = f"{server_url}/api/cohorts/{attach.json()['id']}/members/{stranger.username}"
    assert httpx.put(url, json={"role": "member"}, headers=admin.headers(server_url)).status_code == 200
    with client_for(server_url, stranger) as http:
        refused = http.get("/datastore/label", params={"label": series_uid, "tag": "original"})
    assert refused.status_code == 404  # another cohort's image reads as absent
