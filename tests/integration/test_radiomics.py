"""`/api/radiomics` on the real server and Orthanc: extraction through the API equals bare PyRadiomics on the same
images, what is stored and its provenance, segments, presets, custom parameters, cohort filtering, the journal."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import nibabel as nib
import numpy as np
import pytest

from awesomme import __version__
from awesomme.analysis.radiomics import builtin_preset, extract_features, image_from_array, image_identity
from awesomme.analysis.radiomics_csv import read_feature_csv
from awesomme.dicom.volumes import volume_from_datasets
from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import Account, Cohorts, StoredPatient, attach_to_cohort, client_for, store_patient

TUMOUR, BONE = 1, 2


@dataclass(frozen=True)
class World:
    server_url: str
    alpha: StoredPatient  # in cohort alpha, with a two-segment SEG
    beta: StoredPatient  # in cohort beta, with a tumour SEG
    alpha_seg: str
    beta_seg: str
    label_map: np.ndarray  # the alpha SEG's segments on the series grid (slice, row, column)


def _save_label(server_url: str, admin: Account, patient: StoredPatient, label: np.ndarray, out: Path) -> str:
    """Store a label map as a SEG through MONAI Label's own route (as a viewer saves one)."""
    path = out / f"{patient.patient.series_uid}.nii.gz"
    nib.save(nib.Nifti1Image(np.ascontiguousarray(label.transpose(2, 1, 0)), patient.patient.affine), str(path))
    params = {"label_info": [{"name": "tumour", "idx": TUMOUR}, {"name": "bone", "idx": BONE}], "author": "Doe^Jane"}
    with client_for(server_url, admin) as http:
        reply = http.put(
            "/datastore/label",
            params={"image": patient.patient.series_uid, "tag": "final"},
            files={"label": (path.name, path.read_bytes())},
            data={"params": json.dumps(params)},
        )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["label"])


def _truth(patient: StoredPatient, structure: str) -> np.ndarray:
    """A truth mask as (slice, row, column)."""
    return np.asanyarray(nib.load(str(patient.patient.truth[structure])).dataobj).transpose(2, 1, 0) > 0


@pytest.fixture(scope="module")
def world(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> World:
    out = tmp_path_factory.mktemp("radiomics")
    alpha = store_patient(orthanc, "osteosarcoma-mr", 711, out / "alpha")
    beta = store_patient(orthanc, "osteosarcoma-mr", 712, out / "beta")
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[alpha.patient.study_uid])
    attach_to_cohort(server_url, admin, cohorts.beta, series=[beta.patient.series_uid])
    label = np.where(_truth(alpha, "tumour"), TUMOUR, np.where(_truth(alpha, "bone"), BONE, 0)).astype(np.uint8)
    alpha_seg = _save_label(server_url, admin, alpha, label, out)
    beta_seg = _save_label(server_url, admin, beta, _truth(beta, "tumour").astype(np.uint8), out)
    return World(server_url, alpha, beta, alpha_seg, beta_seg, label)


def _extract(http: httpx.Client, world: World, **body: Any) -> httpx.Response:
    request = {"series_uid": world.alpha.patient.series_uid, "seg_uid": world.alpha_seg, **body}
    return http.post("/api/radiomics", json=request)


def _bare_features(world: World, segment: int, parameters: dict[str, Any]) -> tuple[dict[str, float], Any, Any]:
    """PyRadiomics on the series decoded here from its DICOM files, and the label map we sent."""
    volume = volume_from_datasets(world.alpha.datasets)
    image = image_from_array(volume.array, volume.affine)
    mask = image_from_array((world.label_map == segment).astype(np.uint8), volume.affine)
    return extract_features(image, mask, parameters), image, mask


def test_extraction_equals_bare_pyradiomics_and_is_stored_with_its_provenance(world: World, cohorts: Cohorts) -> None:
    with client_for(world.server_url, cohorts.alpha_member) as http:
        reply = _extract(http, world, preset="ibsi-original", tag="baseline")
        assert reply.status_code == 201, reply.text
        created = reply.json()
        expected, image, mask = _bare_features(world, TUMOUR, builtin_preset("ibsi-original"))
        assert len(created["features"]) == len(expected) == 107
        assert created["features"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        voxel_ml = float(np.prod(world.alpha.patient.spacing))
        tumour_voxels = int((world.label_map == TUMOUR).sum())
        assert created["features"]["original_shape_VoxelVolume"] == pytest.approx(tumour_voxels * voxel_ml)

        provenance = created["provenance"]
        assert provenance["series_uid"] == world.alpha.patient.series_uid
        assert provenance["study_uid"] == world.alpha.patient.study_uid
        assert (provenance["seg_uid"], provenance["segment_number"]) == (world.alpha_seg, TUMOUR)
        assert provenance["segment_label"] == "tumour"
        assert provenance["image"] == image_identity(image)  # voxels, type and geometry
        assert provenance["mask"] == image_identity(mask)
        assert provenance["image"]["size"] == [160, 160, 24]
        assert provenance["preset"] == created["preset"] == "ibsi-original@1"
        assert provenance["parameters"]["setting"]["preCrop"] is True
        assert provenance["parameters"]["setting"]["binWidth"] == 25
        assert provenance["parameters"]["imageType"] == {"Original": {}}
        assert provenance["libraries"]["pyradiomics-bhklab"] == metadata.version("pyradiomics-bhklab")
        assert provenance["libraries"]["SimpleITK"] == metadata.version("SimpleITK")
        assert provenance["platform"]["version"] == __version__
        assert (provenance["user"], provenance["tag"]) == ("alpha.member", "baseline")
        assert datetime.fromisoformat(provenance["time"]).utcoffset().total_seconds() == 0

        # What is read back is what was stored.
        stored = http.get(f"/api/radiomics/{created['id']}")
        assert stored.status_code == 200
        assert stored.json()["features"] == created["features"]
        assert stored.json()["provenance"] == provenance
        listing = http.get("/api/radiomics", params={"series_uid": world.alpha.patient.series_uid}).json()
        mine = [item for item in listing if item["id"] == created["id"]]
        assert mine and mine[0]["feature_count"] == 107 and mine[0]["tag"] == "baseline"
        assert "features" not in mine[0]

        table = http.get(f"/api/radiomics/{created['id']}.csv")
        assert table.status_code == 200
        assert table.headers["content-type"].startswith("text/csv")
        row = read_feature_csv(table.content)
        assert row.features == pytest.approx(created["features"], rel=1e-15)
        assert row.fields["feature_set_id"] == str(created["id"])
        assert row.fields["provenance.image.sha256"] == provenance["image"]["sha256"]
        assert row.fields["provenance.libraries.pyradiomics-bhklab"] == metadata.version("pyradiomics-bhklab")
        assert json.loads(row.fields["provenance.parameters.setting.preCrop"]) is True


def test_the_segment_number_selects_one_segment_of_the_seg(world: World, cohorts: Cohorts) -> None:
    with client_for(world.server_url, cohorts.alpha_admin) as http:
        reply = _extract(http, world, preset="ibsi-original", segment_number=BONE)
        assert reply.status_code == 201, reply.text
        expected, _, _ = _bare_features(world, BONE, builtin_preset("ibsi-original"))
        assert reply.json()["features"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert reply.json()["provenance"]["segment_label"] == "bone"
        missing = _extract(http, world, preset="ibsi-original", segment_number=3)
        assert missing.status_code == 422
        assert "segment 3" in missing.json()["detail"] and "[1, 2]" in missing.json()["detail"]


def test_feature_sets_belong_to_their_series_cohorts(world: World, cohorts: Cohorts, admin: Account) -> None:
    with client_for(world.server_url, cohorts.alpha_member) as http:
        created = _extract(http, world, preset="ibsi-original", tag="filtering")
        assert created.status_code == 201, created.text
    feature_set = created.json()["id"]
    alpha_series = world.alpha.patient.series_uid
    with client_for(world.server_url, cohorts.beta_member) as http:
        # Another cohort's series, SEG and feature set do not exist for this caller.
        assert _extract(http, world, preset="ibsi-original").status_code == 404
        assert http.get(f"/api/radiomics/{feature_set}").status_code == 404
        assert http.get(f"/api/radiomics/{feature_set}.csv").status_code == 404
        assert http.get("/api/radiomics", params={"series_uid": alpha_series}).status_code == 404
        # Their own series works, and lists only its own feature sets.
        own = http.post(
            "/api/radiomics",
            json={"series_uid": world.beta.patient.series_uid, "seg_uid": world.beta_seg, "preset": "ibsi-original"},
        )
        assert own.status_code == 201, own.text
        listing = http.get("/api/radiomics", params={"series_uid": world.beta.patient.series_uid}).json()
        assert [item["id"] for item in listing] == [own.json()["id"]]
        # A SEG of another series is not a SEG of this one.
        crossed = http.post(
            "/api/radiomics",
            json={"series_uid": world.beta.patient.series_uid, "seg_uid": world.alpha_seg, "preset": "ibsi-original"},
        )
        assert crossed.status_code == 404
    with client_for(world.server_url, cohorts.loner) as http:
        assert _extract(http, world, preset="ibsi-original").status_code == 403
        assert http.get(f"/api/radiomics/{feature_set}").status_code == 403
    with client_for(world.server_url, admin) as http:
        assert http.get(f"/api/radiomics/{feature_set}").status_code == 200


def test_presets_are_versioned_per_cohort_and_validated(world: World, cohorts: Cohorts, admin: Account) -> None:
    coarse = builtin_preset("ibsi-original")
    coarse["setting"]["binWidth"] = 50
    body = {"name": "alpha-coarse", "cohort": cohorts.alpha, "parameters": coarse}
    with client_for(world.server_url, cohorts.alpha_admin) as http:
        first = http.post("/api/radiomics/presets", json=body)
        assert first.status_code == 201, first.text
        assert (first.json()["ref"], first.json()["cohort_id"]) == ("alpha-coarse@1", cohorts.alpha)
        finer = {**body, "parameters": {**coarse, "setting": {**coarse["setting"], "binWidth": 10}}}
        second = http.post("/api/radiomics/presets", json=finer)
        assert second.status_code == 201 and second.json()["version"] == 2
        # Never edited in place: version 1 still holds its own parameters.
        presets = {item["ref"]: item for item in http.get("/api/radiomics/presets").json()}
        assert presets["alpha-coarse@1"]["parameters"]["setting"]["binWidth"] == 50
        assert presets["alpha-coarse@2"]["parameters"]["setting"]["binWidth"] == 10
        assert presets["ibsi-original@1"]["builtin"] and presets["osteosarcoma-mr@1"]["builtin"]
        assert presets["osteosarcoma-mr@1"]["parameters"]["imageType"]["LoG"]["sigma"] == [1.0, 2.0, 3.0]
        # Another cohort, the whole platform, a built-in's name: not theirs to add.
        assert http.post("/api/radiomics/presets", json={**body, "cohort": cohorts.beta}).status_code == 404
        assert http.post("/api/radiomics/presets", json={**body, "cohort": None}).status_code == 403
        taken = http.post("/api/radiomics/presets", json={**body, "name": "ibsi-original"})
        assert taken.status_code == 409
        # PyRadiomics' own schema decides what a parameter set may hold, and the answer names the bad key.
        typo = {**body, "parameters": {"setting": {"binWidht": 5}}}
        refused = http.post("/api/radiomics/presets", json=typo)
        assert refused.status_code == 422 and "binWidht" in refused.json()["detail"]
        negative = {**body, "parameters": {"setting": {"binWidth": -1}}}
        refused = http.post("/api/radiomics/presets", json=negative)
        assert refused.status_code == 422 and "binWidth" in refused.json()["detail"]
        unknown_filter = {**body, "parameters": {"imageType": {"Sharpen": {}}}}
        refused = http.post("/api/radiomics/presets", json=unknown_filter)
        assert refused.status_code == 422 and "Sharpen" in refused.json()["detail"]
    with client_for(world.server_url, cohorts.alpha_member) as http:
        assert http.post("/api/radiomics/presets", json=body).status_code == 403
        used = _extract(http, world, preset="alpha-coarse@1")
        assert used.status_code == 201, used.text
        assert used.json()["preset"] == "alpha-coarse@1"
        assert used.json()["provenance"]["parameters"]["setting"]["binWidth"] == 50
        newest = _extract(http, world, preset="alpha-coarse")
        assert newest.json()["preset"] == "alpha-coarse@2"
        assert _extract(http, world, preset="alpha-coarse@9").status_code == 404
    with client_for(world.server_url, cohorts.beta_member) as http:
        assert "alpha-coarse" not in {item["name"] for item in http.get("/api/radiomics/presets").json()}
        beta_request = {"series_uid": world.beta.patient.series_uid, "seg_uid": world.beta_seg}
        refused = http.post("/api/radiomics", json={**beta_request, "preset": "alpha-coarse"})
        assert refused.status_code == 404
    with client_for(world.server_url, admin) as http:
        wide = http.post("/api/radiomics/presets", json={**body, "name": "platform-coarse", "cohort": None})
        assert wide.status_code == 201 and wide.json()["cohort_id"] is None
    with client_for(world.server_url, cohorts.beta_member) as http:
        assert "platform-coarse" in {item["name"] for item in http.get("/api/radiomics/presets").json()}


def test_custom_parameters_are_validated_and_recorded_as_custom(world: World, cohorts: Cohorts) -> None:
    parameters = {"imageType": {"Original": {}}, "featureClass": {"firstorder": []}, "setting": {"binWidth": 10}}
    with client_for(world.server_url, cohorts.alpha_member) as http:
        reply = _extract(http, world, parameters=parameters, tag="custom-firstorder")
        assert reply.status_code == 201, reply.text
        assert reply.json()["preset"] == "custom"
        assert len(reply.json()["features"]) == 18
        assert all(name.startswith("original_firstorder_") for name in reply.json()["features"])
        assert reply.json()["provenance"]["parameters"]["setting"]["preCrop"] is False  # PyRadiomics' default, said

        bad = _extract(http, world, parameters={"setting": {"binWidht": 10}})
        assert bad.status_code == 422 and "binWidht" in bad.json()["detail"]
        both = _extract(http, world, parameters=parameters, preset="ibsi-original")
        assert both.status_code == 422
        neither = _extract(http, world)
        assert neither.status_code == 422
        assert _extract(http, world, preset="no-such-preset").status_code == 404


def test_extraction_leaves_the_event_loop_free_and_is_journaled(world: World, cohorts: Cohorts, admin: Account) -> None:
    started = datetime.now().astimezone().isoformat()
    result: dict[str, httpx.Response] = {}

    def extract() -> None:
        with client_for(world.server_url, cohorts.alpha_member) as http:
            result["reply"] = _extract(http, world, preset="osteosarcoma-mr", tag="loop")

    worker = threading.Thread(target=extract)
    worker.start()
    time.sleep(0.5)
    with client_for(world.server_url, None) as anonymous:
        before = time.perf_counter()
        assert anonymous.get("/api/health").status_code == 200
        health_s = time.perf_counter() - before
    extracting = worker.is_alive()
    worker.join(timeout=300)
    assert extracting, "the extraction ended before the health check: nothing was shown"
    assert health_s < 1.0, f"/api/health took {health_s:.2f} s during an extraction"
    reply = result["reply"]
    assert reply.status_code == 201, reply.text
    assert len(reply.json()["features"]) == 1130  # 14 shape + 93 on each of 12 images (original, 3 LoG, 8 wavelet)

    with client_for(world.server_url, admin) as http:
        http.get(f"/api/radiomics/{reply.json()['id']}.csv")
        events = http.get("/api/audit", params={"since": started, "limit": "1000"}).json()
    actions = {(event["action"], event["actor"], event["outcome"]) for event in events}
    assert ("radiomics.extract", "alpha.member", "success") in actions
    assert ("data.exported", "platform.admin", "success") in actions
    extraction = next(e for e in events if e["action"] == "radiomics.extract" and e["params"].get("tag") == "loop")
    assert extraction["target"] == world.alpha.patient.series_uid
    assert extraction["params"]["feature_set"] == reply.json()["id"]
    assert extraction["cohort"] == str(cohorts.alpha)
