"""`/api/score-types` and `/api/scores` on the real server and Orthanc: built-in and cohort-defined types, who may
define them, scores of every kind of target, value checks, listings with their summary, cohort filtering, journal."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import numpy as np
import pytest

from awesomme.dicom.volumes import grid_from_datasets
from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import Account, Cohorts, StoredPatient, attach_to_cohort, client_for, store_patient
from tests.integration.labels import save_label_map

HUVOS = {
    "key": "huvos",
    "name": "Huvos necrosis grade",
    "kind": "ordinal",
    "labels": {"I": "little or no necrosis", "II": "50-89%", "III": "90-99%", "IV": "no viable tumour"},
}


@dataclass(frozen=True)
class World:
    alpha: StoredPatient
    beta: StoredPatient
    alpha_seg: str
    feature_set: int
    huvos: dict  # alpha's own score type, as created by its admin


@pytest.fixture(scope="module")
def world(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> World:
    out = tmp_path_factory.mktemp("scores")
    alpha = store_patient(orthanc, "osteosarcoma-mr", 7431, out / "alpha")
    beta = store_patient(orthanc, "osteosarcoma-mr", 7432, out / "beta")
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[alpha.patient.study_uid])
    attach_to_cohort(server_url, admin, cohorts.beta, series=[beta.patient.series_uid])
    mask = np.zeros(grid_from_datasets(alpha.datasets).shape, np.uint8)
    mask[8:14, 60:90, 60:90] = 1
    seg = save_label_map(server_url, cohorts.alpha_member, alpha, mask, "Doe^Jane", {1: "tumour"})
    with client_for(server_url, cohorts.alpha_member) as http:
        body = {"series_uid": alpha.patient.series_uid, "seg_uid": seg, "preset": "ibsi-original", "tag": "baseline"}
        extraction = http.post("/api/radiomics", json=body)
    assert extraction.status_code == 201, extraction.text
    with client_for(server_url, cohorts.alpha_admin) as http:
        huvos = http.post("/api/score-types", json={**HUVOS, "cohort_id": cohorts.alpha})
    assert huvos.status_code == 201, huvos.text
    return World(alpha, beta, seg, int(extraction.json()["id"]), huvos.json())


def _score(http: httpx.Client, uid: str, kind: str, score_type: str | int, value: object, **extra: object):
    body = {"target_uid": uid, "target_kind": kind, "score_type": score_type, "value": value, **extra}
    return http.post("/api/scores", json=body)


def test_built_in_types_are_there_for_everyone_in_a_cohort(server_url: str, cohorts: Cohorts) -> None:
    with client_for(server_url, cohorts.beta_member) as http:
        types = {t["key"]: t for t in http.get("/api/score-types").json()}
    assert {"mrs", "free_text", "numeric"} <= set(types)
    mrs = types["mrs"]
    assert mrs["kind"] == "ordinal" and mrs["cohort_id"] is None
    assert list(mrs["labels"]) == [str(grade) for grade in range(7)]
    assert mrs["labels"]["0"] == "No symptoms at all" and mrs["labels"]["6"] == "Dead"
    assert types["numeric"]["kind"] == "numeric" and (types["numeric"]["minimum"], types["numeric"]["maximum"]) == (
        0.0,
        100.0,
    )
    assert types["free_text"]["kind"] == "text"


def test_cohort_admins_define_types_for_their_cohort_platform_admins_for_everyone(
    server_url: str, admin: Account, cohorts: Cohorts, world: World
) -> None:
    huvos = {**HUVOS, "cohort_id": cohorts.alpha}
    with client_for(server_url, cohorts.alpha_member) as http:
        assert http.post("/api/score-types", json={**huvos, "key": "huvos2"}).status_code == 403
    with client_for(server_url, cohorts.alpha_admin) as http:
        assert world.huvos["cohort_id"] == cohorts.alpha and list(world.huvos["labels"]) == ["I", "II", "III", "IV"]
        assert http.post("/api/score-types", json=huvos).status_code == 409  # never edited in place
        assert http.post("/api/score-types", json={**huvos, "key": "mrs"}).status_code == 409  # no shadowing
        assert http.post("/api/score-types", json={**huvos, "cohort_id": None}).status_code == 403
        assert http.post("/api/score-types", json={**huvos, "cohort_id": cohorts.beta}).status_code == 404
        for bad in (
            {**huvos, "key": "no labels", "labels": None},
            {**huvos, "key": "onelabel", "labels": {"x": "only one"}},
            {**huvos, "key": "size", "kind": "numeric", "labels": None, "minimum": 5, "maximum": 5},
            {**huvos, "key": "size", "kind": "numeric", "labels": None},
            {**huvos, "key": "Caps", "kind": "text", "labels": None},
            {**huvos, "key": "shape", "kind": "round"},
        ):
            reply = http.post("/api/score-types", json=bad)
            assert reply.status_code == 422, (bad, reply.text)
            assert "detail" in reply.json()
    with client_for(server_url, admin) as http:
        size = {"key": "tumour_size_mm", "kind": "numeric", "minimum": 0, "maximum": 500, "name": "Largest diameter"}
        assert http.post("/api/score-types", json=size).status_code == 201
        assert http.post("/api/score-types", json={**size, "key": "huvos"}).status_code == 409  # a cohort uses it
    with client_for(server_url, cohorts.beta_member) as http:
        keys = {t["key"] for t in http.get("/api/score-types").json()}
    assert "tumour_size_mm" in keys and "huvos" not in keys  # alpha's own type is alpha's
    with client_for(server_url, cohorts.alpha_member) as http:
        assert "huvos" in {t["key"] for t in http.get("/api/score-types").json()}
    with client_for(server_url, admin) as http:
        events = http.get("/api/audit", params={"action": "score_type.create", "limit": 1000}).json()
    assert any(
        e["target"] == "huvos" and e["cohort"] == str(cohorts.alpha) and e["actor"] == "alpha.admin" for e in events
    )


def test_every_kind_of_target_can_be_scored_and_listed_with_a_summary(
    server_url: str, admin: Account, cohorts: Cohorts, world: World
) -> None:
    patient = world.alpha.patient
    targets = [
        (patient.study_uid, "study"),
        (patient.series_uid, "series"),
        (world.alpha_seg, "seg"),
        (str(world.feature_set), "feature_set"),
    ]
    with client_for(server_url, cohorts.alpha_member) as http:
        for uid, kind in targets:
            reply = _score(http, uid, kind, "mrs", 2, confidence=0.5, comment="at three months")
            assert reply.status_code == 201, (kind, reply.text)
            score = reply.json()
            assert (score["target_kind"], score["value"], score["rater"]) == (kind, 2, "alpha.member")
            assert score["value_label"].startswith("Slight disability")
            assert score["study_uid"] == patient.study_uid
            assert score["series_uid"] == ("" if kind == "study" else patient.series_uid)  # resolved from the target
        assert _score(http, patient.series_uid, "series", "free_text", "Cortical breach, posterior").status_code == 201
        assert _score(http, patient.series_uid, "series", "numeric", 37.5).status_code == 201
    with client_for(server_url, cohorts.alpha_admin) as http:
        assert _score(http, patient.series_uid, "series", "mrs", "4", confidence=1.0).status_code == 201
        assert _score(http, patient.series_uid, "series", "huvos", "III").status_code == 201
        assert _score(http, patient.series_uid, "series", "numeric", 42).status_code == 201

    with client_for(server_url, cohorts.alpha_member) as http:
        listing = http.get("/api/scores", params={"target_uid": patient.series_uid}).json()
    assert len(listing["scores"]) == 6
    summary = {s["score_type"]: s for s in listing["summary"]}
    assert summary["mrs"]["count"] == 2 and summary["mrs"]["raters"] == ["alpha.admin", "alpha.member"]
    assert summary["mrs"]["distribution"] == {"0": 0, "1": 0, "2": 1, "3": 0, "4": 1, "5": 0, "6": 0}
    assert summary["mrs"]["mean_confidence"] == pytest.approx(0.75)
    assert summary["numeric"]["distribution"]["mean"] == pytest.approx(39.75)
    assert summary["numeric"]["distribution"]["min"] == 37.5 and summary["numeric"]["distribution"]["max"] == 42
    assert summary["huvos"]["distribution"] == {"I": 0, "II": 0, "III": 1, "IV": 0}
    assert summary["free_text"]["count"] == 1 and summary["free_text"]["distribution"] == {}

    with client_for(server_url, cohorts.alpha_member) as http:
        only_mrs = http.get("/api/scores", params={"target_uid": patient.series_uid, "score_type": "mrs"}).json()
        assert {s["score_type"] for s in only_mrs["scores"]} == {"mrs"} and len(only_mrs["scores"]) == 2
        in_cohort = http.get("/api/scores", params={"cohort": cohorts.alpha, "score_type": "mrs"}).json()
    uids = {s["target_uid"] for s in in_cohort["scores"]}
    assert {uid for uid, _ in targets} <= uids
    with client_for(server_url, admin) as http:
        events = http.get("/api/audit", params={"action": "score.create", "user": "alpha.member", "limit": 1000}).json()
    assert {e["target"] for e in events if e["outcome"] == "success"} >= {uid for uid, _ in targets}


def test_values_are_checked_against_their_type(server_url: str, cohorts: Cohorts, world: World) -> None:
    series = world.alpha.patient.series_uid
    with client_for(server_url, cohorts.alpha_member) as http:
        for score_type, value in (
            ("mrs", 7),
            ("mrs", -1),
            ("mrs", 2.5),
            ("mrs", True),
            ("mrs", "two"),
            ("numeric", 100.5),
            ("numeric", "42"),
            ("free_text", ""),
            ("free_text", "x" * 4001),
            ("free_text", 3),
            ("huvos", "V"),
            ("nosuchtype", 1),
        ):
            reply = _score(http, series, "series", score_type, value)
            assert reply.status_code == 422, (score_type, value, reply.text)
            assert score_type in reply.json()["detail"] or "detail" in reply.json()
        assert _score(http, series, "series", "mrs", 1, confidence=1.5).status_code == 422
        assert _score(http, series, "series", "mrs", 1, confidence=-0.1).status_code == 422
        assert _score(http, series, "galaxy", "mrs", 1).status_code == 422
        assert _score(http, world.alpha_seg, "series", "mrs", 1).status_code == 422  # a SEG is scored as a seg
        assert _score(http, "999999999", "feature_set", "mrs", 1).status_code == 404
        assert _score(http, "999999999", "prediction", "mrs", 1).status_code == 404
        assert _score(http, "1.2.3.4.5.6", "series", "mrs", 1).status_code == 404
        assert http.get("/api/scores").status_code == 422  # a target or a cohort must be named
        assert _score(http, series, "series", "mrs", 6).status_code == 201  # the scale's ends are values too


def test_scores_follow_the_cohorts(server_url: str, admin: Account, cohorts: Cohorts, world: World) -> None:
    alpha_series, beta_series = world.alpha.patient.series_uid, world.beta.patient.series_uid
    with client_for(server_url, cohorts.beta_member) as http:
        for uid, kind in (
            (alpha_series, "series"),
            (world.alpha.patient.study_uid, "study"),
            (world.alpha_seg, "seg"),
            (str(world.feature_set), "feature_set"),
        ):
            assert _score(http, uid, kind, "mrs", 1).status_code == 404, kind
        # beta holds one series of the study, not the whole study: the study is not beta's to score.
        assert _score(http, world.beta.patient.study_uid, "study", "mrs", 1).status_code == 404
        assert _score(http, beta_series, "series", "mrs", 1).status_code == 201
        assert _score(http, beta_series, "series", "huvos", "I").status_code == 422  # alpha's type
        assert http.get("/api/scores", params={"target_uid": alpha_series}).json()["scores"] == []
        assert http.get("/api/scores", params={"cohort": cohorts.alpha}).status_code == 404
        beta_scores = http.get("/api/scores", params={"cohort": cohorts.beta}).json()["scores"]
    beta_scored = {s["series_uid"] for s in beta_scores}
    assert beta_series in beta_scored and alpha_series not in beta_scored
    with client_for(server_url, admin) as http:
        assert _score(http, beta_series, "series", "huvos", "I").status_code == 422  # not a cohort of this series
    with client_for(server_url, cohorts.alpha_member) as http:
        assert _score(http, beta_series, "series", "mrs", 1).status_code == 404
        alpha_scores = http.get("/api/scores", params={"cohort": cohorts.alpha}).json()["scores"]
        assert beta_series not in {s["series_uid"] for s in alpha_scores}
        assert http.get("/api/scores", params={"target_uid": beta_series}).json()["scores"] == []
    with client_for(server_url, cohorts.loner) as http:
        assert _score(http, alpha_series, "series", "mrs", 1).status_code == 403
        assert http.get("/api/scores", params={"target_uid": alpha_series}).status_code == 403
    with client_for(server_url, admin) as http:
        assert len(http.get("/api/scores", params={"target_uid": beta_series}).json()["scores"]) == 1
