"""`/api/classification` and `/api/predictions` on the real server and Orthanc, with the shipped demo model
``osteosarcoma_response``: a phantom's tumour SEG saved through MONAI Label's label route, its features extracted
through `/api/radiomics`, predictions from the feature set and from its CSV, what is stored, the reports, cohort
filtering, model bindings, clear 422s and the journal."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from awesomme.analysis.classification import load_classifier, predict
from awesomme.analysis.classifier_config import DEMO_NOTICE, load_classification_file
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

MODEL = "osteosarcoma_response"
SHIPPED_YAML = Path(__file__).resolve().parents[2] / "infer_configs" / f"{MODEL}.yaml"
BOUND_COHORT = "osteosarcoma"  # the cohort the shipped YAML binds the model to


@dataclass(frozen=True)
class World:
    server_url: str
    patient: StoredPatient  # in the bound cohort and in alpha (to which the model is not bound)
    clinician: Account  # member of the bound cohort
    cohort_id: int
    feature_set: int  # osteosarcoma-mr features of the tumour
    ibsi_feature_set: int  # another preset's features of the same tumour


def _bound_cohort(server_url: str, admin: Account) -> int:
    with client_for(server_url, admin) as http:
        existing = [c["id"] for c in http.get("/api/cohorts").json() if c["name"] == BOUND_COHORT]
        if existing:
            return int(existing[0])
        reply = http.post(
            "/api/cohorts", json={"name": BOUND_COHORT, "description": "osteosarcoma response", "identified": True}
        )
        assert reply.status_code == 201, reply.text
        return int(reply.json()["id"])


def _save_tumour(server_url: str, admin: Account, patient: StoredPatient) -> str:
    """The phantom's truth tumour (a NIfTI on the series grid) saved as a SEG, as a viewer saves a label."""
    path = patient.patient.truth["tumour"]
    params = {"label_info": [{"name": "tumour", "idx": 1}], "author": "Doe^Jane"}
    with client_for(server_url, admin) as http:
        reply = http.put(
            "/datastore/label",
            params={"image": patient.patient.series_uid, "tag": "final"},
            files={"label": (path.name, path.read_bytes())},
            data={"params": json.dumps(params)},
        )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["label"])


@pytest.fixture(scope="module")
def world(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> World:
    patient = store_patient(orthanc, "osteosarcoma-mr", 7601, tmp_path_factory.mktemp("classification"))
    cohort_id = _bound_cohort(server_url, admin)
    attach_to_cohort(server_url, admin, cohort_id, studies=[patient.patient.study_uid])
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[patient.patient.study_uid])
    clinician = create_account("clf.clinician")
    with client_for(server_url, admin) as http:
        reply = http.put(f"/api/cohorts/{cohort_id}/members/{clinician.username}", json={"role": "member"})
        assert reply.status_code == 200, reply.text
        seg = _save_tumour(server_url, admin, patient)
        ids = {}
        for preset in ("osteosarcoma-mr", "ibsi-original"):
            body = {"series_uid": patient.patient.series_uid, "seg_uid": seg, "preset": preset, "tag": "baseline"}
            reply = http.post("/api/radiomics", json=body)
            assert reply.status_code == 201, reply.text
            ids[preset] = int(reply.json()["id"])
    return World(server_url, patient, clinician, cohort_id, ids["osteosarcoma-mr"], ids["ibsi-original"])


def _predict(http: httpx.Client, feature_set: int) -> httpx.Response:
    return http.post(f"/api/classification/{MODEL}/predict", json={"feature_set_id": feature_set})


def _upload(http: httpx.Client, content: bytes, cohort: str) -> httpx.Response:
    files = {"file": ("features.csv", content, "text/csv")}
    return http.post(f"/api/classification/{MODEL}/predict", files=files, data={"cohort": cohort})


def _csv_row(text: str) -> dict[str, str]:
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 1
    return rows[0]


def test_models_are_listed_where_they_are_bound(world: World, cohorts: Cohorts, admin: Account) -> None:
    with client_for(world.server_url, world.clinician) as http:
        models = {model["name"]: model for model in http.get("/api/classification/models").json()}
    model = models[MODEL]
    assert model["labels"] == ["good", "poor"] and model["version"]
    schema = model["input_schema"]
    assert schema["type"] == "object" and schema["required"] == ["feature_set_id"]
    assert schema["x-preset"] == "osteosarcoma-mr" and len(schema["x-features"]) > 1000
    assert model["demo"] is True and model["notice"] == DEMO_NOTICE
    assert model["validation"]["held_out"]["auc"] > 0.5
    for unbound in (cohorts.alpha_member, cohorts.loner):  # alpha is not bound to the model; the loner has no cohort
        with client_for(world.server_url, unbound) as http:
            assert MODEL not in [m["name"] for m in http.get("/api/classification/models").json()]
    with client_for(world.server_url, admin) as http:
        assert MODEL in [m["name"] for m in http.get("/api/classification/models").json()]


def test_a_prediction_from_a_feature_set_is_the_models_answer_and_is_stored(world: World) -> None:
    with client_for(world.server_url, world.clinician) as http:
        reply = _predict(http, world.feature_set)
        assert reply.status_code == 201, reply.text
        answer = reply.json()
        features = http.get(f"/api/radiomics/{world.feature_set}").json()["features"]
        listed = http.get("/api/predictions", params={"series_uid": world.patient.patient.series_uid}).json()
    config = load_classification_file(SHIPPED_YAML)
    assert config is not None
    expected = predict(load_classifier(config), features)  # the shipped artefact, loaded here, on the stored values
    assert answer["label"] == expected.label in ("good", "poor")
    assert answer["probabilities"] == pytest.approx(expected.probabilities, abs=1e-6)
    assert sum(answer["probabilities"].values()) == pytest.approx(1.0)
    assert answer["model_version"] == config.version and answer["notice"] == DEMO_NOTICE
    stored = next(p for p in listed if p["id"] == answer["id"])
    assert stored["label"] == answer["label"] and stored["feature_set_id"] == world.feature_set
    assert stored["series_uid"] == world.patient.patient.series_uid
    assert stored["study_uid"] == world.patient.patient.study_uid
    provenance = stored["provenance"]
    assert provenance["artefact_sha256"] == config.artefact.sha256 and provenance["user"] == world.clinician.username
    assert provenance["input"]["feature_set_id"] == world.feature_set
    assert provenance["input"]["feature_set_preset"].startswith("osteosarcoma-mr@")
    assert len(provenance["input"]["features_sha256"]) == 64 and provenance["versions"]["scikit-learn"]


def test_a_csv_of_the_feature_set_gives_the_same_prediction_for_its_cohort(world: World) -> None:
    with client_for(world.server_url, world.clinician) as http:
        from_set = _predict(http, world.feature_set).json()
        content = http.get(f"/api/radiomics/{world.feature_set}.csv").content
        reply = _upload(http, content, BOUND_COHORT)
        assert reply.status_code == 201, reply.text
        from_csv = reply.json()
        assert _upload(http, content, str(world.cohort_id)).status_code == 201  # the cohort by id works too
        report = _csv_row(http.get(f"/api/predictions/{from_csv['id']}.csv").text)
    assert from_csv["label"] == from_set["label"]
    assert from_csv["probabilities"] == pytest.approx(from_set["probabilities"], abs=1e-9)
    assert report["cohort"] == BOUND_COHORT and report["input"] == "csv" and report["series_uid"] == ""
    assert report["label"] == from_csv["label"] and report["notice"] == DEMO_NOTICE


def test_reports_are_readable_and_say_demo(world: World) -> None:
    with client_for(world.server_url, world.clinician) as http:
        answer = _predict(http, world.feature_set).json()
        page = http.get(f"/api/predictions/{answer['id']}.html")
        table = http.get(f"/api/predictions/{answer['id']}.csv")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert DEMO_NOTICE in page.text and f"<strong>Result:</strong> {answer['label']}" in page.text
    assert world.patient.patient.series_uid in page.text and "<script" not in page.text
    assert table.headers["content-type"].startswith("text/csv")
    row = _csv_row(table.text)
    assert row["prediction_id"] == str(answer["id"]) and row["model"] == MODEL
    assert float(row["probability_good"]) == pytest.approx(answer["probabilities"]["good"])
    assert row["feature_set_id"] == str(world.feature_set) and row["created_by"] == world.clinician.username


def test_other_cohorts_neither_see_nor_run_it(world: World, cohorts: Cohorts) -> None:
    with client_for(world.server_url, world.clinician) as http:
        mine = _predict(http, world.feature_set).json()["id"]
        content = http.get(f"/api/radiomics/{world.feature_set}.csv").content
        uploaded = _upload(http, content, BOUND_COHORT).json()["id"]
    series = world.patient.patient.series_uid
    with client_for(world.server_url, cohorts.beta_member) as http:  # the series is in none of beta's cohorts
        assert _predict(http, world.feature_set).status_code == 404
        assert http.get("/api/predictions", params={"series_uid": series}).status_code == 404
        for prediction in (mine, uploaded):
            assert http.get(f"/api/predictions/{prediction}.csv").status_code == 404
            assert http.get(f"/api/predictions/{prediction}.html").status_code == 404
        assert _upload(http, content, BOUND_COHORT).status_code == 404  # not their cohort: it does not exist
        assert _upload(http, content, "beta").status_code == 403  # theirs, but the model is not bound to it
    with client_for(world.server_url, cohorts.alpha_member) as http:  # sees the series through alpha
        assert _predict(http, world.feature_set).status_code == 403  # the model is not bound to alpha
        listed = [p["id"] for p in http.get("/api/predictions", params={"series_uid": series}).json()]
        assert mine in listed and uploaded not in listed  # the upload belongs to the bound cohort only
        assert http.get(f"/api/predictions/{mine}.html").status_code == 200
        assert http.get(f"/api/predictions/{uploaded}.html").status_code == 404
    with client_for(world.server_url, cohorts.loner) as http:
        assert _predict(http, world.feature_set).status_code == 403


def _without_column(content: bytes, column: str) -> bytes:
    rows = list(csv.reader(io.StringIO(content.decode())))
    keep = [i for i, name in enumerate(rows[0]) if name != column]
    out = io.StringIO()
    csv.writer(out).writerows([[row[i] for i in keep] for row in rows])
    return out.getvalue().encode()


def test_bad_input_gets_a_clear_422(world: World) -> None:
    config = load_classification_file(SHIPPED_YAML)
    assert config is not None
    feature = config.input.features[7]
    with client_for(world.server_url, world.clinician) as http:
        content = http.get(f"/api/radiomics/{world.feature_set}.csv").content
        cases = {
            "corrupt": _upload(http, b"\x00\xff\xfe not a CSV \x81", BOUND_COHORT),
            "two rows": _upload(http, content + content.splitlines()[1] + b"\n", BOUND_COHORT),
            "missing": _upload(http, _without_column(content, feature), BOUND_COHORT),
            "preset": _predict(http, world.ibsi_feature_set),
            "no id": http.post(f"/api/classification/{MODEL}/predict", json={}),
            "no file": http.post(f"/api/classification/{MODEL}/predict", files={"cohort": (None, BOUND_COHORT)}),
        }
        assert _predict(http, 2**62).status_code == 404
        assert http.post("/api/classification/no_such_model/predict", json={"feature_set_id": 1}).status_code == 404
    for case, reply in cases.items():
        assert reply.status_code == 422, (case, reply.text)
    assert "UTF-8" in cases["corrupt"].text or "readable" in cases["corrupt"].text
    assert "exactly one row" in cases["two rows"].text
    assert f"1 of the model's {len(config.input.features)} features are missing: {feature}" in cases["missing"].text
    assert "ibsi-original" in cases["preset"].text and "osteosarcoma-mr" in cases["preset"].text
    assert "feature_set_id" in cases["no id"].text and "'file'" in cases["no file"].text


def test_predictions_and_reports_are_journaled(world: World, admin: Account) -> None:
    with client_for(world.server_url, world.clinician) as http:
        prediction = _predict(http, world.feature_set).json()["id"]
        http.get(f"/api/predictions/{prediction}.html")
    with client_for(world.server_url, admin) as http:
        made = http.get("/api/audit", params={"action": "prediction", "user": world.clinician.username}).json()
        exported = http.get("/api/audit", params={"action": "data.exported", "user": world.clinician.username}).json()
    event = next(e for e in made if e["target"] == str(prediction))
    assert event["outcome"] == "success" and str(world.cohort_id) in event["cohort"].split()
    assert event["params"]["model"] == MODEL
    assert any(e["target"] == str(prediction) and "html" in e["params"]["what"] for e in exported)
