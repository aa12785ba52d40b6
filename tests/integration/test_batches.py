"""Cohort batches on the real server: a dry run over mixed modalities, who may start and read batches, and batches
run to the end on a real LocalCluster of two worker processes (segmentation, radiomics, a failing item)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

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

pytestmark = pytest.mark.timeout(300)


@dataclass(frozen=True)
class Gamma:
    """A cohort of three MR patients and one CT patient, its admin and its member."""

    cohort: int
    admin: Account
    member: Account
    mr: list[StoredPatient]
    ct: StoredPatient


@pytest.fixture(scope="module")
def gamma(
    server_url: str,
    admin: Account,
    cohorts: Cohorts,
    orthanc: OrthancClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Gamma:
    out = tmp_path_factory.mktemp("batches")
    headers = admin.headers(server_url)
    reply = httpx.post(f"{server_url}/api/cohorts", json={"name": "gamma", "description": "batches"}, headers=headers)
    assert reply.status_code == 201, reply.text
    cohort = reply.json()["id"]
    people = {role: create_account(f"gamma.{role}") for role in ("admin", "member")}
    for role, account in people.items():
        url = f"{server_url}/api/cohorts/{cohort}/members/{account.username}"
        assert httpx.put(url, json={"role": role}, headers=headers).status_code == 200
    mr = [store_patient(orthanc, "osteosarcoma-mr", seed, out / f"mr{seed}") for seed in (2501, 2502, 2503)]
    ct = store_patient(orthanc, "chest-ct", 2511, out / "ct")
    attach_to_cohort(server_url, admin, cohort, studies=[p.patient.study_uid for p in (*mr, ct)])
    bind_model(server_url, admin, "everything_mr", ["alpha", "gamma"])
    bind_model(server_url, admin, "nothing_ct", ["gamma"])
    return Gamma(cohort, people["admin"], people["member"], mr, ct)


@pytest.fixture()
def gamma_admin(server_url: str, gamma: Gamma) -> Iterator[httpx.Client]:
    with client_for(server_url, gamma.admin) as client:
        yield client


def _segmentation(gamma: Gamma, **extra: Any) -> dict[str, Any]:
    return {"cohort": gamma.cohort, "kind": "segmentation", "model": "everything_mr", **extra}


def _series_of(answer: dict[str, Any], verdict: str) -> set[str]:
    return {series["series_uid"] for patient in answer["patients"] for series in patient[verdict]}


def test_a_dry_run_on_mixed_modalities_matches_the_mr_series_says_why_not_the_ct_and_creates_nothing(
    gamma: Gamma, gamma_admin: httpx.Client
) -> None:
    reply = gamma_admin.post("/api/batches", json=_segmentation(gamma, dry_run=True, selection={"description": "T2"}))
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert _series_of(answer, "matched") == {p.patient.series_uid for p in gamma.mr}
    assert _series_of(answer, "unmatched") == {gamma.ct.patient.series_uid}
    assert answer["counts"] == {"matched": 3, "unmatched": 1, "ambiguous": 0}
    ct_patient = next(p for p in answer["patients"] if p["unmatched"])
    assert "T2" in ct_patient["unmatched"][0]["reason"]
    listed = gamma_admin.get("/api/batches", params={"cohort": gamma.cohort})
    assert listed.status_code == 200 and listed.json() == []


def test_a_selection_by_series_number_and_modality_leaves_out_the_rest(gamma: Gamma, gamma_admin: httpx.Client) -> None:
    body = _segmentation(gamma, dry_run=True, selection={"modality": "MR", "series_number": 4})
    answer = gamma_admin.post("/api/batches", json=body).json()
    assert _series_of(answer, "matched") == set()
    reasons = {s["reason"] for p in answer["patients"] for s in p["unmatched"]}
    assert any("series number 3" in reason for reason in reasons) and any("modality CT" in r for r in reasons)


def test_another_cohorts_admin_gets_404_and_a_member_403_and_bad_input_is_a_422(
    server_url: str, gamma: Gamma, cohorts: Cohorts
) -> None:
    body = _segmentation(gamma, dry_run=True)
    with client_for(server_url, cohorts.alpha_admin) as stranger:
        assert stranger.post("/api/batches", json=body).status_code == 404
        assert stranger.get("/api/batches", params={"cohort": gamma.cohort}).status_code == 404
    with client_for(server_url, gamma.member) as member:
        assert member.post("/api/batches", json=body).status_code == 403
    with client_for(server_url, gamma.admin) as owner:
        unbound = owner.post("/api/batches", json={**body, "model": "broken_mr"})
        assert unbound.status_code in (403, 404), unbound.text
        regex = owner.post("/api/batches", json={**body, "selection": {"description": "T2("}})
        assert regex.status_code == 422 and "selection.description" in regex.text
        radiomics = owner.post("/api/batches", json={**body, "kind": "radiomics", "preset": "ibsi-original"})
        assert radiomics.status_code == 422 and "seg" in radiomics.text
        nothing = owner.post("/api/batches", json={**body, "dry_run": False, "selection": {"series_number": 77}})
        assert nothing.status_code == 422 and "matches no series" in nothing.text
