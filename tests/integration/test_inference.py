"""Automatic segmentation through MONAI Label's /infer and its Python client, on series in the real Orthanc."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import nibabel as nib
import nrrd
import numpy as np
import pydicom
import torch

from awesomme.core.config import Settings
from awesomme.dicom.volumes import volume_from_datasets
from awesomme.orthanc.client import OrthancClient
from tests.dicom_checks import dciodvfy_errors
from tests.integration.conftest import Account, StoredPatient, leftovers, monailabel_client, store_patient


def test_info_lists_the_loadable_models_and_health_names_the_broken_one(http: httpx.Client) -> None:
    info = http.get("/info/").json()
    models = info["models"]
    assert models["everything_mr"]["config"]["version"] == "0.0.1"
    assert "broken_mr" not in models
    health = http.get("/api/health").json()
    assert health["status"] == "ok"
    assert "everything_mr" in health["models"]
    assert "sha256" in health["disabled_models"]["broken_mr.yaml"]
    # AWESOMME_DEVICE=auto: the GPU where there is one, else the CPU; both answers name it
    assert health["device"] == info["device"] == ("cuda:0" if torch.cuda.is_available() else "cpu")


def test_an_inference_answers_in_the_series_grid_and_stores_a_valid_seg(
    platform: Settings,
    server_url: str,
    orthanc: OrthancClient,
    mr_patient: StoredPatient,
    tmp_path: Path,
    admin: Account,
) -> None:
    client = monailabel_client(server_url, admin, tmp_path)
    labeled_before = client.datastore()
    image_id = mr_patient.patient.series_uid
    result_file, params = client.infer("everything_mr", image_id, {"description": "pre-op staging"})

    volume = volume_from_datasets(mr_patient.datasets)
    result = nib.load(result_file)
    assert result.shape == volume.array.shape[::-1]
    assert np.allclose(result.affine, volume.affine, atol=1e-4)
    assert np.asanyarray(result.dataobj).min() == 1  # this model labels every voxel

    voxels = volume.array.size
    assert params["segments"] == [
        {
            "number": 1,
            "label": "tumour",
            "type": {"scheme": "SCT", "value": "108369006", "meaning": "Neoplasm"},
            "volume_ml": round(voxels * volume.grid.voxel_volume_ml, 3),
        }
    ]
    assert params["model_version"] == "0.0.1"
    assert 0.5 < params["confidence"] <= 1.0
    assert {"fetch_decode", "forward", "post", "seg_encode", "store"} <= set(params["timings_s"])

    state = orthanc.series_state(params["seg_series_uid"])
    seg = orthanc.retrieve_series(state.study_uid, state.series_uid)[0]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == image_id
    referenced = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence
    assert {item.ReferencedSOPInstanceUID for item in referenced} == {ds.SOPInstanceUID for ds in mr_patient.datasets}
    segment = seg.SegmentSequence[0]
    assert (segment.SegmentAlgorithmType, segment.SegmentAlgorithmName, segment.SegmentLabel) == (
        "AUTOMATIC",
        "everything_mr",
        "tumour",
    )
    assert "DEMO weights - not for clinical use" in seg.SeriesDescription
    assert seg.ContentDescription == "pre-op staging (DEMO weights - not for clinical use)"
    seg.save_as(tmp_path / "seg.dcm")
    assert dciodvfy_errors(tmp_path / "seg.dcm") == []

    # A prediction is not a label: the labels are unchanged, the prediction is listed only under the tag of a model's
    # output (`original`, as MONAI Label lists it); nothing temporary stays behind.
    after = client.datastore()
    labels_after = dict(after["objects"][image_id]["labels"])
    assert labels_after.pop("original")["info"]["SeriesInstanceUID"] == params["seg_series_uid"]
    assert labels_after == {k: v for k, v in labeled_before["objects"][image_id]["labels"].items() if k != "original"}
    time.sleep(0.5)
    assert leftovers(platform) == []


def _result_file(http: httpx.Client, image_id: str, extension: str, path: Path) -> Path:
    reply = http.post(
        "/infer/everything_mr",
        params={"image": image_id, "output": "image"},
        data={"params": json.dumps({"result_extension": extension})},
    )
    assert reply.status_code == 200, reply.text
    path.write_bytes(reply.content)
    return path


def test_results_come_as_nrrd_or_dicom_seg(http: httpx.Client, mr_patient: StoredPatient, tmp_path: Path) -> None:
    image_id = mr_patient.patient.series_uid
    _result_file(http, image_id, ".nrrd", tmp_path / "label.nrrd")
    data, header = nrrd.read(str(tmp_path / "label.nrrd"))
    assert data.shape == volume_from_datasets(mr_patient.datasets).array.shape[::-1]
    assert header["space"] == "left-posterior-superior"

    seg = pydicom.dcmread(_result_file(http, image_id, ".dcm", tmp_path / "seg.dcm"))
    assert seg.Modality == "SEG" and seg.ReferencedSeriesSequence[0].SeriesInstanceUID == image_id


def test_a_model_refuses_another_modality_and_nothing_found_means_no_seg(
    http: httpx.Client, orthanc: OrthancClient, ct_patient: StoredPatient, mr_patient: StoredPatient
) -> None:
    segs = len(orthanc.find_series(("SEG",)))
    reply = http.post("/infer/everything_mr", params={"image": ct_patient.patient.series_uid, "output": "json"})
    assert reply.status_code == 422
    assert "MR" in reply.json()["detail"] and "CT" in reply.json()["detail"]

    reply = http.post("/infer/nothing_ct", params={"image": ct_patient.patient.series_uid, "output": "json"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["seg_series_uid"] is None and reply.json()["segments"] == []
    assert len(orthanc.find_series(("SEG",))) == segs

    reply = http.post(
        "/infer/everything_mr",
        params={"image": mr_patient.patient.series_uid, "output": "json"},
        data={"params": '{"result_extension": ".exe"}'},
    )
    assert reply.status_code == 422
    assert "result_extension" in reply.json()["detail"]


def test_segmentations_of_a_series_list_predictions_and_labels(
    http: httpx.Client, server_url: str, mr_patient: StoredPatient, tmp_path: Path, admin: Account
) -> None:
    image_id = mr_patient.patient.series_uid
    client = monailabel_client(server_url, admin, tmp_path)
    _, params = client.infer("everything_mr", image_id, {})
    label = client.save_label(
        image_id, str(mr_patient.patient.truth["tumour"]), tag="final", params={"author": "Roe^Richard"}
    )
    listing = {item["seg_uid"]: item for item in http.get("/api/segmentations", params={"series_uid": image_id}).json()}
    prediction = listing[params["seg_series_uid"]]
    assert (prediction["role"], prediction["algorithm_type"], prediction["model"], prediction["model_version"]) == (
        "prediction",
        "AUTOMATIC",
        "everything_mr",
        "0.0.1",
    )
    saved = listing[label["label"]]
    # a person's label (the client's author is ignored: the login is the author), correcting the model they ran
    assert (saved["role"], saved["algorithm_type"], saved["author"], saved["created_by"]) == (
        "label",
        "SEMIAUTOMATIC",
        "platform.admin",
        "platform.admin",
    )
    assert saved["derived_from"] == params["seg_series_uid"]
    assert saved["segments"][0]["volume_ml"] > 0
    assert http.get("/api/segmentations", params={"series_uid": "1.2.3.999"}).status_code == 404


def test_the_uncertainty_strategy_proposes_an_unlabelled_series_of_the_models_modality(
    server_url: str, orthanc: OrthancClient, ct_patient: StoredPatient, tmp_path: Path, admin: Account
) -> None:
    store_patient(orthanc, "osteosarcoma-mr", 401, tmp_path / "unlabelled")
    client = monailabel_client(server_url, admin, tmp_path)
    proposal = client.next_sample("uncertainty", {"model": "everything_mr", "candidates": 3})
    assert proposal["model"] == "everything_mr"
    objects = client.datastore()["objects"]
    assert objects[proposal["id"]]["image"]["info"]["Modality"] == "MR"
    assert "final" not in objects[proposal["id"]]["labels"]
    assert 0.0 <= proposal["uncertainty"] <= 1.0


def test_a_label_correcting_a_prediction_is_semiautomatic_and_keeps_both(
    http: httpx.Client,
    server_url: str,
    orthanc: OrthancClient,
    mr_patient: StoredPatient,
    tmp_path: Path,
    admin: Account,
) -> None:
    image_id = mr_patient.patient.series_uid
    client = monailabel_client(server_url, admin, tmp_path)
    _, params = client.infer("everything_mr", image_id, {})
    prediction_uid = params["seg_series_uid"]
    truth = str(mr_patient.patient.truth["tumour"])
    saved = client.save_label(image_id, truth, tag="final", params={"based_on": prediction_uid, "author": "Doe^Jane"})
    listing = {item["seg_uid"]: item for item in http.get("/api/segmentations", params={"series_uid": image_id}).json()}
    corrected = listing[saved["label"]]
    assert (corrected["algorithm_type"], corrected["derived_from"], corrected["author"]) == (
        "SEMIAUTOMATIC",
        prediction_uid,
        "platform.admin",
    )
    assert prediction_uid in listing  # the model's SEG is kept, not overwritten
    state = orthanc.series_state(saved["label"])
    seg = orthanc.retrieve_series(state.study_uid, state.series_uid)[0]
    assert seg.SegmentSequence[0].SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert seg.SegmentSequence[0].SegmentAlgorithmName == "everything_mr"

    # Pointing at something that is not a prediction of this series is refused.
    reply = http.put(
        "/datastore/label",
        params={"image": image_id, "tag": "final"},
        data={"params": json.dumps({"based_on": saved["label"]})},
        files={"label": ("label.nii.gz", Path(truth).read_bytes())},
    )
    assert reply.status_code == 422
    assert "not a prediction" in reply.json()["detail"]
