""" "DEMO weights - not for clinical use" survives on everything derived from demo weights, on the real server and
Orthanc: a prediction with a description longer than DICOM allows, a person's correction of it, interpolations;
and a model's output with its gaps filled is no final label (never training data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from highdicom.seg import SegmentAlgorithmTypeValues

from awesomme.core.db import session_scope
from awesomme.dicom.seg import DEMO_NOTICE, encode_seg, seg_content
from awesomme.dicom.volumes import grid_from_datasets, sort_by_position
from awesomme.models import Segmentation, SegmentationRole
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

SHAPE = (8, 32, 32)
LONG = "pre-operative staging of the distal femur lesion, second reading after chemotherapy, " * 2


@pytest.fixture(scope="module")
def stored(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> StoredPatient:
    bind_model(server_url, admin, "everything_mr", ["alpha"])  # demo_weights: true
    patient = store_patient(orthanc, "osteosarcoma-mr", 6101, tmp_path_factory.mktemp("demo"), shape=SHAPE)
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[patient.patient.study_uid])
    return patient


def _seg(orthanc: OrthancClient, stored: StoredPatient, seg_uid: str) -> pydicom.Dataset:
    return orthanc.retrieve_series(stored.patient.study_uid, seg_uid)[0]


def _listing(server_url: str, account: Account, series_uid: str) -> dict[str, dict[str, Any]]:
    with client_for(server_url, account) as http:
        answer = http.get("/api/segmentations", params={"series_uid": series_uid})
    return {item["seg_uid"]: item for item in answer.json()}


def _marked(seg: pydicom.Dataset) -> bool:
    texts = [str(seg.SeriesDescription), str(seg.ContentDescription)]
    return all(text.endswith(f"({DEMO_NOTICE})") and len(text) <= 64 for text in texts)


def _sparse() -> np.ndarray:
    label = np.zeros(SHAPE, np.uint8)
    label[[1, 5], 8:20, 8:20] = 1  # slices 2 to 4 empty: something to fill
    return label


def _interpolate(server_url: str, account: Account, series_uid: str, seg_uid: str) -> str:
    with client_for(server_url, account) as member:
        body = {"series_uid": series_uid, "seg_uid": seg_uid, "segment_number": 1}
        reply = member.post("/api/segmentations/interpolate", json=body)
    assert reply.status_code == 201, reply.text
    return str(reply.json()["seg_uid"])


def test_a_long_description_gives_way_to_the_notice_and_a_correction_keeps_it(
    server_url: str, cohorts: Cohorts, orthanc: OrthancClient, stored: StoredPatient, tmp_path: Path
) -> None:
    series_uid = stored.patient.series_uid
    client = monailabel_client(server_url, cohorts.alpha_member, tmp_path)
    _, params = client.infer("everything_mr", series_uid, {"description": LONG})
    prediction = _seg(orthanc, stored, params["seg_series_uid"])
    assert _marked(prediction) and str(prediction.ContentDescription).startswith(LONG[:20])

    path = tmp_path / "sparse.nii.gz"
    path.write_bytes(nifti_bytes(_sparse(), stored.patient.affine))
    info = {"label_info": [{"name": "tumour", "idx": 1}], "model": "everything_mr"}
    corrected = str(client.save_label(series_uid, str(path), params=info)["label"])
    assert _marked(_seg(orthanc, stored, corrected))
    filled = _interpolate(server_url, cohorts.alpha_member, series_uid, corrected)
    assert _marked(_seg(orthanc, stored, filled))

    listing = _listing(server_url, cohorts.alpha_member, series_uid)
    assert [listing[uid]["demo_weights"] for uid in (params["seg_series_uid"], corrected, filled)] == [True] * 3
    assert listing[filled]["tag"] == "final"  # a person's label filled in stays their final label


def test_a_models_output_filled_in_is_no_final_label(
    server_url: str, cohorts: Cohorts, orthanc: OrthancClient, stored: StoredPatient
) -> None:
    """A demo model's prediction with gaps (stored as the inference stores one), then interpolated."""
    source = sort_by_position(orthanc.retrieve_series_metadata(stored.patient.study_uid, stored.patient.series_uid))
    content = seg_content(_sparse(), {1: "tumour"})
    seg = encode_seg(
        source,
        content,
        algorithm_type=SegmentAlgorithmTypeValues.AUTOMATIC,
        series_description="everything_mr 0.0.1",
        content_description="everything_mr 0.0.1",
        algorithm_name="everything_mr",
        algorithm_version="0.0.1",
        demo=True,
    )
    orthanc.store([seg])
    with session_scope() as session:
        session.add(
            Segmentation(
                seg_series_uid=str(seg.SeriesInstanceUID),
                seg_sop_uid=str(seg.SOPInstanceUID),
                source_series_uid=stored.patient.series_uid,
                study_uid=stored.patient.study_uid,
                role=SegmentationRole.PREDICTION,
                tag="original",
                algorithm_type="AUTOMATIC",
                model_name="everything_mr",
                model_version="0.0.1",
                segments=content.summary(grid_from_datasets(source).voxel_volume_ml),
                created_by="platform",
                demo_weights=True,
            )
        )
    filled = _interpolate(server_url, cohorts.alpha_member, stored.patient.series_uid, str(seg.SeriesInstanceUID))
    item = _listing(server_url, cohorts.alpha_member, stored.patient.series_uid)[filled]
    assert (item["tag"], item["demo_weights"], item["derived_from"]) == (
        "interpolated",
        True,
        str(seg.SeriesInstanceUID),
    )
    assert _marked(_seg(orthanc, stored, filled))
