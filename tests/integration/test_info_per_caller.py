"""``GET /info/`` offers each caller only what they may run, and "Update Model" tells a cohort admin what to train.

MONAI Label's bundled viewer and 3D Slicer's module fill their model, trainer and strategy lists from ``/info/``
and show hard-coded errors when a call is refused: a model listed to a member must be one bound to their cohort.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import Account, Cohorts, attach_to_cohort, bind_model, client_for, store_patient

BOUND = "everything_mr"  # bound to alpha below
UNBOUND = "nothing_ct"  # bound to no cohort


@pytest.fixture(scope="module")
def infos(server_url: str, admin: Account, cohorts: Cohorts) -> dict[str, dict]:
    bind_model(server_url, admin, BOUND, ["alpha"])
    callers = {
        "platform_admin": admin,
        "alpha_admin": cohorts.alpha_admin,
        "alpha_member": cohorts.alpha_member,
        "beta_member": cohorts.beta_member,
        "loner": cohorts.loner,
    }
    answers = {}
    for name, account in callers.items():
        with client_for(server_url, account) as client:
            reply = client.get("/info/")
            assert reply.status_code == 200, reply.text
            answers[name] = reply.json()
    return answers


def test_members_see_only_models_bound_to_their_cohorts(infos: dict[str, dict]) -> None:
    assert {BOUND, UNBOUND} <= set(infos["platform_admin"]["models"])
    assert BOUND in infos["alpha_member"]["models"] and UNBOUND not in infos["alpha_member"]["models"]
    assert BOUND not in infos["beta_member"]["models"] and UNBOUND not in infos["beta_member"]["models"]
    assert infos["loner"]["models"] == {}
    assert set(infos["alpha_member"]["models"]) <= set(infos["platform_admin"]["models"])


def test_trainers_and_scoring_only_for_the_admins_of_bound_cohorts(infos: dict[str, dict]) -> None:
    assert {BOUND, UNBOUND} <= set(infos["platform_admin"]["trainers"])
    assert BOUND in infos["alpha_admin"]["trainers"] and UNBOUND not in infos["alpha_admin"]["trainers"]
    assert set(infos["alpha_admin"]["train_stats"]) <= set(infos["alpha_admin"]["trainers"])
    assert infos["alpha_member"]["trainers"] == {} and infos["alpha_member"]["train_stats"] == {}
    assert infos["alpha_member"]["scoring"] == {}
    assert infos["alpha_admin"]["scoring"] == infos["platform_admin"]["scoring"]


def test_strategies_for_anyone_in_a_cohort(infos: dict[str, dict]) -> None:
    assert infos["alpha_member"]["strategies"] == infos["platform_admin"]["strategies"] != {}
    assert infos["loner"]["strategies"] == {}


def test_every_model_offered_to_a_member_runs_on_their_cohorts_series(
    server_url: str, admin: Account, cohorts: Cohorts, infos: dict[str, dict], orthanc: OrthancClient, tmp_path: Path
) -> None:
    stored = store_patient(orthanc, "osteosarcoma-mr", 8851, tmp_path, shape=(4, 32, 32))
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[stored.patient.study_uid])
    series = stored.patient.series_uid
    with client_for(server_url, cohorts.alpha_member) as member:
        for model in infos["alpha_member"]["models"]:
            reply = member.post(f"/infer/{model}", params={"image": series, "output": "json"})
            assert reply.status_code not in (401, 403, 404), (model, reply.text)
        refused = member.post(f"/infer/{UNBOUND}", params={"image": series, "output": "json"})
        assert refused.status_code == 403 and "not bound" in refused.json()["detail"]


def test_update_model_tells_a_cohort_admin_which_models_to_train(server_url: str, cohorts: Cohorts) -> None:
    with client_for(server_url, cohorts.alpha_admin) as cohort_admin:
        reply = cohort_admin.post("/train/", json={})
        assert reply.status_code == 403
        detail = reply.json()["detail"]
        assert "platform admins" in detail and f"POST /train/{BOUND}" in detail and UNBOUND not in detail
    with client_for(server_url, cohorts.alpha_member) as member:
        assert member.post("/train/", json={}).status_code == 403
