"""`/api/agreement` on the real server and Orthanc: SEGs of several authors saved through MONAI Label's label route
and a model's output, compared per segment in the series' own geometry; scores of three raters on a cohort's items,
against values worked out by hand; CSV exports, cohort filtering and the journal."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from awesomme.dicom.volumes import grid_from_datasets
from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import (
    Account,
    Cohorts,
    StoredPatient,
    attach_to_cohort,
    client_for,
    create_account,
    monailabel_client,
    store_patient,
)
from tests.integration.labels import save_label_map

TUMOUR = 1


@dataclass(frozen=True)
class Segs:
    patient: StoredPatient
    spacing: tuple[float, float, float]  # (slice, row, column) mm
    jane: np.ndarray  # the masks as drawn, on the series grid
    john: np.ndarray


def _save_label(server_url: str, account: Account, patient: StoredPatient, label: np.ndarray, author: str) -> str:
    return save_label_map(server_url, account, patient, label, author, {TUMOUR: "tumour"})


@pytest.fixture(scope="module")
def segs(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> Segs:
    out = tmp_path_factory.mktemp("agreement")
    patient = store_patient(orthanc, "osteosarcoma-mr", 7401, out / "mr")
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[patient.patient.study_uid])
    grid = grid_from_datasets(patient.datasets)
    jane = np.zeros(grid.shape, np.uint8)
    jane[8:12, 60:80, 60:80] = TUMOUR  # 4 x 20 x 20 voxels
    john = np.zeros(grid.shape, np.uint8)
    john[8:12, 62:82, 60:80] = TUMOUR  # the same box two rows further: 4 x 18 x 20 voxels in common
    first_draft = np.zeros(grid.shape, np.uint8)
    first_draft[2:4, 10:20, 10:20] = TUMOUR
    # the author names are the client's and ignored: the raters are the accounts that saved the labels
    _save_label(server_url, cohorts.alpha_member, patient, first_draft, "Roe^John")  # replaced by the newer SEG
    _save_label(server_url, cohorts.alpha_member, patient, jane, "Doe^Jane")
    _save_label(server_url, cohorts.alpha_admin, patient, john, "Roe^John")
    # A model is an author too: everything_mr labels every voxel.
    client = monailabel_client(server_url, admin, out)
    client.infer("everything_mr", patient.patient.series_uid, {})
    return Segs(patient, tuple(reversed(grid.spacing)), jane, john)


def _hd95(a: np.ndarray, b: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """The symmetric 95th-percentile surface distance, worked out with scipy alone (surfaces: mask minus erosion)."""
    surface_a, surface_b = a ^ ndimage.binary_erosion(a), b ^ ndimage.binary_erosion(b)
    to_b = ndimage.distance_transform_edt(~surface_b, sampling=spacing)[surface_a]
    to_a = ndimage.distance_transform_edt(~surface_a, sampling=spacing)[surface_b]
    return float(max(np.percentile(to_b, 95), np.percentile(to_a, 95)))


def test_pairwise_dice_hd95_and_volumes_per_segment(server_url: str, cohorts: Cohorts, segs: Segs) -> None:
    series_uid = segs.patient.patient.series_uid
    with client_for(server_url, cohorts.alpha_member) as http:
        reply = http.get("/api/agreement/segmentations", params={"series_uid": series_uid})
    assert reply.status_code == 200, reply.text
    result = reply.json()
    # raters are the accounts that saved the labels (the client's author field is ignored) and the model
    assert [a["author"] for a in result["authors"]] == ["alpha.admin", "alpha.member", "model:everything_mr"]
    assert [a["kind"] for a in result["authors"]] == ["account", "account", "model"]
    assert result["spacing_mm"] == pytest.approx(list(segs.spacing))
    pairs = {(p["author_a"], p["author_b"]): p for p in result["pairs"]}
    assert set(pairs) == {
        ("alpha.admin", "alpha.member"),
        ("alpha.admin", "model:everything_mr"),
        ("alpha.member", "model:everything_mr"),
    }
    voxel_ml = float(np.prod(segs.spacing)) / 1000
    experts = pairs[("alpha.admin", "alpha.member")]
    assert (experts["segment_a"], experts["segment_b"]) == (TUMOUR, TUMOUR) and experts["segment_type"] == "Neoplasm"
    assert experts["label_a"] == experts["label_b"] == "tumour"
    assert experts["dice"] == pytest.approx(
        2 * 1440 / (1600 + 1600), abs=1e-6
    )  # the member's newest SEG, not the draft
    assert experts["hd95_mm"] == pytest.approx(_hd95(segs.john > 0, segs.jane > 0, segs.spacing), rel=1e-4)
    assert experts["hd95_mm"] == pytest.approx(2 * segs.spacing[1], rel=1e-4)  # two rows apart
    assert experts["volume_a_ml"] == pytest.approx(1600 * voxel_ml, rel=1e-6)
    assert experts["volume_difference_ml"] == pytest.approx(0.0, abs=1e-9)
    assert experts["volume_difference_percent"] == pytest.approx(0.0, abs=1e-9)
    model = pairs[("alpha.member", "model:everything_mr")]
    everything = int(np.prod(segs.jane.shape))
    assert model["dice"] == pytest.approx(2 * 1600 / (1600 + everything), rel=1e-5)
    assert model["volume_b_ml"] == pytest.approx(everything * voxel_ml, rel=1e-6)
    assert model["volume_difference_ml"] == pytest.approx((1600 - everything) * voxel_ml, rel=1e-6)
    mean = (1600 + everything) / 2
    assert model["volume_difference_percent"] == pytest.approx(100 * (1600 - everything) / mean, rel=1e-5)

    with client_for(server_url, cohorts.alpha_admin) as http:
        table = http.get("/api/agreement/segmentations.csv", params={"series_uid": series_uid})
    assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert len(rows) == 3
    row = next(r for r in rows if r["author_a"] == "alpha.admin" and r["author_b"] == "alpha.member")
    assert (row["kind_a"], row["kind_b"]) == ("account", "account")
    assert float(row["dice"]) == pytest.approx(0.9) and float(row["hd95_mm"]) == pytest.approx(experts["hd95_mm"])


def test_segmentation_agreement_follows_the_cohorts_and_is_journaled(
    server_url: str, admin: Account, cohorts: Cohorts, segs: Segs
) -> None:
    series_uid = segs.patient.patient.series_uid
    for outsider in (cohorts.beta_member, cohorts.loner):
        with client_for(server_url, outsider) as http:
            for path in ("/api/agreement/segmentations", "/api/agreement/segmentations.csv"):
                reply = http.get(path, params={"series_uid": series_uid})
                assert reply.status_code in (403, 404), (outsider.username, path, reply.text)
    with client_for(server_url, admin) as http:
        events = http.get("/api/audit", params={"action": "data.exported", "user": "alpha.admin", "limit": 1000})
    assert any(e["target"] == series_uid and e["outcome"] == "success" for e in events.json())


def test_a_series_with_one_author_has_no_pairs(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path: Path
) -> None:
    patient = store_patient(orthanc, "osteosarcoma-mr", 7402, tmp_path)
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[patient.patient.study_uid])
    mask = np.zeros(grid_from_datasets(patient.datasets).shape, np.uint8)
    mask[5:8, 40:50, 40:50] = TUMOUR
    _save_label(server_url, cohorts.alpha_member, patient, mask, "Doe^Jane")
    with client_for(server_url, cohorts.alpha_member) as http:
        result = http.get("/api/agreement/segmentations", params={"series_uid": patient.patient.series_uid}).json()
    assert [a["author"] for a in result["authors"]] == ["alpha.member"] and result["pairs"] == []


# -- scores -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scored:
    cohort: int
    items: list[str]  # study 1, series 1, study 2, series 2
    rater_admin: Account  # raters of their own: other tests count the alpha accounts' cohorts
    rater_member: Account


@pytest.fixture(scope="module")
def scored(
    server_url: str,
    admin: Account,
    cohorts: Cohorts,
    orthanc: OrthancClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Scored:
    """A cohort of its own (so no other test's scores mix in), two patients, three raters scoring mRS."""
    out = tmp_path_factory.mktemp("scored")
    with client_for(server_url, admin) as http:
        reply = http.post("/api/cohorts", json={"name": f"raters-{uuid.uuid4().hex[:8]}", "identified": True})
        assert reply.status_code == 201, reply.text
        cohort = int(reply.json()["id"])
        rater_admin, rater_member = create_account("agreement.admin"), create_account("agreement.member")
        for account, role in ((rater_admin, "admin"), (rater_member, "member")):
            member = http.put(f"/api/cohorts/{cohort}/members/{account.username}", json={"role": role})
            assert member.status_code == 200, member.text
    items = []
    for seed in (7411, 7412):
        patient = store_patient(orthanc, "osteosarcoma-mr", seed, out / str(seed))
        attach_to_cohort(server_url, admin, cohort, studies=[patient.patient.study_uid])
        items += [patient.patient.study_uid, patient.patient.series_uid]
    kinds = ["study", "series", "study", "series"]
    # agreement.admin and agreement.member score all four items, the platform admin the first two only.
    table = {
        rater_admin: [0, 1, 2, 3],
        rater_member: [0, 1, 2, 3],  # item 4 is re-scored 2 below: a rater's newest score counts
        admin: [0, 1],
    }
    for account, values in table.items():
        with client_for(server_url, account) as http:
            for item, kind, value in zip(items, kinds, values, strict=False):
                body = {"target_uid": item, "target_kind": kind, "score_type": "mrs", "value": value}
                reply = http.post("/api/scores", json={**body, "confidence": 0.8})
                assert reply.status_code == 201, reply.text
    with client_for(server_url, rater_member) as http:
        body = {"target_uid": items[3], "target_kind": "series", "score_type": "mrs", "value": 2}
        assert http.post("/api/scores", json=body).status_code == 201
    return Scored(cohort, items, rater_admin, rater_member)


def test_score_agreement_against_hand_computed_values(server_url: str, cohorts: Cohorts, scored: Scored) -> None:
    with client_for(server_url, scored.rater_member) as http:
        reply = http.get("/api/agreement/scores", params={"cohort": scored.cohort, "score_type": "mrs"})
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["raters"] == ["agreement.admin", "agreement.member", "platform.admin"]
    assert result["items"] == 4 and result["items_scored_by_all"] == 2
    assert result["score_type"]["key"] == "mrs" and result["cohen_weights"] == "quadratic"
    kappas = {(k["rater_a"], k["rater_b"]): (k["items"], k["kappa"]) for k in result["cohen_kappa"]}
    # 0,1,2,3 against 0,1,2,2 with weights (i-j)^2: sum w*O = 1/4, sum w*E = 2, kappa = 1 - (1/4)/2 = 0.875.
    assert kappas[("agreement.admin", "agreement.member")] == (4, pytest.approx(0.875))
    assert kappas[("agreement.admin", "platform.admin")] == (2, pytest.approx(1.0))
    assert kappas[("agreement.member", "platform.admin")] == (2, pytest.approx(1.0))
    # Fleiss on the two items all three scored, (0,0,0) and (1,1,1): P = 1, Pe = 1/2, kappa = 1.
    assert result["fleiss_kappa"] == pytest.approx(1.0)
    # Krippendorff (ordinal) on all four items: values 0,0,0 | 1,1,1 | 2,2 | 3,2; n0 = n1 = n2 = 3, n3 = 1, n = 10.
    # Ordinal d2(c,k) = (sum of n_g from c to k - (n_c + n_k)/2)^2. Do = 2 * d2(2,3) / n = 2 * 4 / 10 = 0.8.
    # De = 2 * (9*9 + 9*36 + 3*64 + 9*9 + 3*25 + 3*4) / (10 * 9) = 17. alpha = 1 - 0.8/17.
    assert result["krippendorff_level"] == "ordinal"
    assert result["krippendorff_alpha"] == pytest.approx(1 - 0.8 / 17)

    with client_for(server_url, scored.rater_admin) as http:
        table = http.get("/api/agreement/scores.csv", params={"cohort": scored.cohort, "score_type": "mrs"})
    assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [r["statistic"] for r in rows] == ["cohen_kappa"] * 3 + ["fleiss_kappa", "krippendorff_alpha"]
    assert float(rows[-1]["value"]) == pytest.approx(1 - 0.8 / 17) and rows[-1]["items"] == "4"


def test_score_agreement_is_for_the_cohorts_members_and_needs_comparable_scores(
    server_url: str, cohorts: Cohorts, scored: Scored
) -> None:
    params: dict[str, str | int] = {"cohort": scored.cohort, "score_type": "mrs"}
    with client_for(server_url, cohorts.beta_member) as http:
        assert http.get("/api/agreement/scores", params=params).status_code == 404
        assert http.get("/api/agreement/scores.csv", params=params).status_code == 404
    with client_for(server_url, scored.rater_member) as http:
        text = http.get("/api/agreement/scores", params={**params, "score_type": "free_text"})
        assert text.status_code == 422 and "free text" in text.json()["detail"]
        unknown = http.get("/api/agreement/scores", params={**params, "score_type": "nosuchtype"})
        assert unknown.status_code == 422
        for too_large in ("9" * 30, str(2**63)):  # an id no row can have: a 422, never the driver's overflow
            huge = http.get("/api/agreement/scores.csv", params={**params, "score_type": too_large})
            assert huge.status_code == 422 and "no score type" in huge.json()["detail"]
        numeric = http.get("/api/agreement/scores", params={**params, "score_type": "numeric"}).json()
        assert numeric["items"] == 0 and numeric["krippendorff_level"] == "interval"
        assert numeric["krippendorff_alpha"] is None
