"""`GET /api/cohorts/{id}/export.csv` on the real server and Orthanc: one row per series and feature-set tag, with
the features and provenance as stored, the newest prediction of the shipped demo classifier, the scores; only the
cohort's series; its admins only; journaled as an export."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import httpx
import nibabel as nib
import numpy as np
import pytest

from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import (
    Account,
    Cohorts,
    StoredPatient,
    attach_to_cohort,
    client_for,
    create_account,
    store_patient,
)
from tests.integration.labels import save_label_map

MODEL = "osteosarcoma_response"
BOUND_COHORT = "osteosarcoma"  # the cohort the shipped YAML binds the demo classifier to


@dataclass(frozen=True)
class World:
    cohort: int
    cohort_admin: Account
    cohort_member: Account
    scored: StoredPatient  # two feature-set tags, predictions, scores
    plain: StoredPatient  # no feature set, one score
    elsewhere: StoredPatient  # in beta only
    baseline: int  # osteosarcoma-mr features, tag baseline
    ibsi_newest: int  # the newer of two ibsi-original feature sets tagged ibsi
    newest_prediction: dict


def _cohort(http: httpx.Client) -> int:
    existing = [c["id"] for c in http.get("/api/cohorts").json() if c["name"] == BOUND_COHORT]
    if existing:
        return int(existing[0])
    reply = http.post(
        "/api/cohorts", json={"name": BOUND_COHORT, "description": "osteosarcoma response", "identified": True}
    )
    assert reply.status_code == 201, reply.text
    return int(reply.json()["id"])


def _tumour(patient: StoredPatient) -> np.ndarray:
    image = nib.load(str(patient.patient.truth["tumour"]))
    assert isinstance(image, nib.Nifti1Image)
    truth = np.asanyarray(image.dataobj)
    return (truth.transpose(2, 1, 0) > 0).astype(np.uint8)


def _score(http: httpx.Client, uid: str, kind: str, score_type: str, value: object) -> None:
    body = {"target_uid": uid, "target_kind": kind, "score_type": score_type, "value": value}
    reply = http.post("/api/scores", json=body)
    assert reply.status_code == 201, reply.text


@pytest.fixture(scope="module")
def world(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> World:
    out = tmp_path_factory.mktemp("export")
    scored = store_patient(orthanc, "osteosarcoma-mr", 7441, out / "scored")
    plain = store_patient(orthanc, "osteosarcoma-mr", 7442, out / "plain")
    elsewhere = store_patient(orthanc, "osteosarcoma-mr", 7443, out / "elsewhere")
    cohort_admin, cohort_member = create_account("export.admin"), create_account("export.member")
    with client_for(server_url, admin) as http:
        cohort = _cohort(http)
        for account, role in ((cohort_admin, "admin"), (cohort_member, "member")):
            reply = http.put(f"/api/cohorts/{cohort}/members/{account.username}", json={"role": role})
            assert reply.status_code == 200, reply.text
    attach_to_cohort(server_url, admin, cohort, studies=[scored.patient.study_uid, plain.patient.study_uid])
    attach_to_cohort(server_url, admin, cohorts.beta, studies=[elsewhere.patient.study_uid])
    seg = save_label_map(server_url, cohort_member, scored, _tumour(scored), "Doe^Jane", {1: "tumour"})

    series = scored.patient.series_uid
    with client_for(server_url, cohort_member) as http:
        ids = []
        for preset, tag in (("osteosarcoma-mr", "baseline"), ("ibsi-original", "ibsi"), ("ibsi-original", "ibsi")):
            body = {"series_uid": series, "seg_uid": seg, "preset": preset, "tag": tag}
            reply = http.post("/api/radiomics", json=body)
            assert reply.status_code == 201, reply.text
            ids.append(int(reply.json()["id"]))
        predictions = []
        for _ in range(2):
            reply = http.post(f"/api/classification/{MODEL}/predict", json={"feature_set_id": ids[0]})
            assert reply.status_code in (200, 201), reply.text
            predictions.append(reply.json())
        _score(http, series, "series", "mrs", 2)
        _score(http, str(ids[0]), "feature_set", "numeric", 10)
        _score(http, str(predictions[-1]["id"]), "prediction", "numeric", 20)
        _score(http, scored.patient.study_uid, "study", "free_text", "=HYPERLINK(1)")  # text stays out
        _score(http, plain.patient.series_uid, "series", "mrs", 1)
    with client_for(server_url, admin) as http:
        _score(http, series, "series", "mrs", 4)
        _score(http, elsewhere.patient.series_uid, "series", "mrs", 5)
    return World(cohort, cohort_admin, cohort_member, scored, plain, elsewhere, ids[0], ids[2], predictions[-1])


def _export(server_url: str, account: Account, cohort: int) -> httpx.Response:
    with client_for(server_url, account) as http:
        return http.get(f"/api/cohorts/{cohort}/export.csv")


def _rows(reply: httpx.Response) -> list[dict[str, str]]:
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(reply.text)))


def test_one_row_per_series_and_tag_with_features_provenance_prediction_and_scores(
    server_url: str, world: World
) -> None:
    rows = _rows(_export(server_url, world.cohort_admin, world.cohort))
    scored = {r["tag"]: r for r in rows if r["series_uid"] == world.scored.patient.series_uid}
    assert set(scored) == {"baseline", "ibsi"}
    assert scored["ibsi"]["feature_set_id"] == str(world.ibsi_newest)  # the newest feature set of a tag

    baseline = scored["baseline"]
    with client_for(server_url, world.cohort_member) as http:
        stored = http.get(f"/api/radiomics/{world.baseline}").json()
    assert baseline["feature_set_id"] == str(world.baseline) and baseline["preset"] == stored["preset"]
    assert baseline["study_uid"] == world.scored.patient.study_uid and baseline["modality"] == "MR"
    assert baseline["cohort_id"] == str(world.cohort) and baseline["cohort"] == BOUND_COHORT
    for name, value in stored["features"].items():
        expected = "" if value is None else pytest.approx(value, rel=1e-12, abs=1e-12)
        assert (baseline[name] if value is None else float(baseline[name])) == expected, name
    filtered = [name for name in stored["features"] if name.startswith("log-sigma")]
    assert filtered and all(scored["ibsi"][name] == "" for name in filtered)  # ibsi-original has no LoG features
    assert scored["ibsi"]["original_firstorder_Mean"] != ""
    assert baseline["provenance.user"] == stored["provenance"]["user"] == world.cohort_member.username
    assert baseline["provenance.image.sha256"] == stored["provenance"]["image"]["sha256"]
    assert baseline["provenance.parameters.setting.preCrop"] in ("true", "false")

    prediction = world.newest_prediction
    assert baseline["prediction.id"] == str(prediction["id"]) and baseline["prediction.label"] == prediction["label"]
    assert baseline["prediction.model"] == MODEL and baseline["prediction.model_version"] == prediction["model_version"]
    for label, probability in prediction["probabilities"].items():
        assert float(baseline[f"prediction.probability.{label}"]) == pytest.approx(probability)
    assert scored["ibsi"]["prediction.id"] == str(prediction["id"])  # none of its own: the series' newest

    # Scores of the series, of what derives from it (its feature set) and of its study.
    assert baseline["score.mrs.n"] == "2" and float(baseline["score.mrs.mean"]) == pytest.approx(3.0)
    assert baseline["score.numeric.n"] == "2" and float(baseline["score.numeric.mean"]) == pytest.approx(15.0)
    assert baseline["score.numeric.latest"] == "20" and baseline["score.free_text.n"] == "1"
    assert (
        "score.free_text.latest" not in baseline
        and "HYPERLINK" not in _export(server_url, world.cohort_admin, world.cohort).text
    )

    plain = [r for r in rows if r["series_uid"] == world.plain.patient.series_uid]
    assert len(plain) == 1 and plain[0]["tag"] == "" and plain[0]["feature_set_id"] == ""
    assert plain[0]["score.mrs.latest"] == "1" and plain[0]["prediction.id"] == ""
    assert world.elsewhere.patient.series_uid not in {r["series_uid"] for r in rows}  # beta's series


def test_only_the_cohorts_admins_export_and_every_export_is_journaled(
    server_url: str, admin: Account, cohorts: Cohorts, world: World
) -> None:
    assert _export(server_url, world.cohort_member, world.cohort).status_code == 403
    assert _export(server_url, cohorts.loner, world.cohort).status_code == 403
    assert _export(server_url, cohorts.alpha_admin, world.cohort).status_code == 404  # not a cohort of theirs
    assert _export(server_url, world.cohort_admin, 999999).status_code == 404
    everything = _rows(_export(server_url, admin, world.cohort))
    assert world.scored.patient.series_uid in {r["series_uid"] for r in everything}
    beta = _rows(_export(server_url, admin, cohorts.beta))
    assert {r["series_uid"] for r in beta} >= {world.elsewhere.patient.series_uid}
    assert world.scored.patient.series_uid not in {r["series_uid"] for r in beta}
    with client_for(server_url, admin) as http:
        events = http.get("/api/audit", params={"action": "data.exported", "user": "export.admin", "limit": 1000})
    exported = [e for e in events.json() if e["cohort"] == str(world.cohort)]
    assert any(e["outcome"] == "success" for e in exported)


def test_a_prediction_from_an_uploaded_csv_is_scored_in_the_cohort_named_with_it(
    server_url: str, admin: Account, cohorts: Cohorts, world: World
) -> None:
    with client_for(server_url, world.cohort_member) as http:
        features = http.get(f"/api/radiomics/{world.baseline}.csv").content
        files = {"file": ("features.csv", features, "text/csv")}
        upload = http.post(f"/api/classification/{MODEL}/predict", files=files, data={"cohort": str(world.cohort)})
        assert upload.status_code in (200, 201), upload.text
        prediction = str(upload.json()["id"])
        reply = http.post(
            "/api/scores", json={"target_uid": prediction, "target_kind": "prediction", "score_type": "mrs", "value": 0}
        )
        assert reply.status_code == 201, reply.text
        assert reply.json()["cohort_id"] == world.cohort and reply.json()["series_uid"] == ""
        listed = http.get("/api/scores", params={"cohort": world.cohort, "score_type": "mrs"}).json()["scores"]
        assert prediction in {s["target_uid"] for s in listed}
    with client_for(server_url, cohorts.beta_member) as http:
        body = {"target_uid": prediction, "target_kind": "prediction", "score_type": "mrs", "value": 0}
        assert http.post("/api/scores", json=body).status_code == 404
        assert http.get("/api/scores", params={"target_uid": prediction}).json()["scores"] == []
