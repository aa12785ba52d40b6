"""Checks that something later bypassed, existence oracles and unbounded knobs (issue 18, "Medium"), on the real stack.

Alpha's series is bound to ``everything_mr``; beta's series is another cohort's. The attackers are alpha's member
and admin: what they try must be refused before anything runs, and answer the same whether a thing is absent or
only not theirs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from awesomme.core.config import Settings
from awesomme.core.db import session_scope
from awesomme.models import Segmentation
from awesomme.orthanc.client import OrthancClient
from tests.integration.addresses import next_loopback, post_from
from tests.integration.conftest import (
    Account,
    Cohorts,
    StoredPatient,
    attach_to_cohort,
    bind_model,
    create_account,
    monailabel_client,
    store_patient,
)

ABSENT_SERIES = "1.2.826.0.1.3680043.8.498.999999999.1"


@dataclass(frozen=True)
class Stage:
    alpha: StoredPatient
    beta: StoredPatient
    headers: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def stage(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> Stage:
    out = tmp_path_factory.mktemp("bypass")
    alpha = store_patient(orthanc, "osteosarcoma-mr", 1801, out / "alpha")
    beta = store_patient(orthanc, "osteosarcoma-mr", 1802, out / "beta")
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[alpha.patient.study_uid])
    attach_to_cohort(server_url, admin, cohorts.beta, studies=[beta.patient.study_uid])
    bind_model(server_url, admin, "everything_mr", ["alpha"])
    accounts = {"admin": admin, "alpha_admin": cohorts.alpha_admin, "member": cohorts.alpha_member}
    return Stage(alpha, beta, {name: account.headers(server_url) for name, account in accounts.items()})


def _segs_of(orthanc: OrthancClient, patient: StoredPatient) -> tuple[int, int]:
    """SEGs in Orthanc in the patient's study, and SEG records of its series."""
    in_orthanc = [hit for hit in orthanc.find_series(("SEG",)) if hit.StudyInstanceUID == patient.patient.study_uid]
    with session_scope() as session:
        query = select(Segmentation).where(Segmentation.source_series_uid == patient.patient.series_uid)
        records = list(session.scalars(query))
    return len(in_orthanc), len(records)


def _infer(server_url: str, headers: dict[str, str], image: str, params: str, model: str = "everything_mr") -> Any:
    return httpx.post(
        f"{server_url}/infer/{model}",
        params={"image": image, "output": "json"},
        files={"params": (None, params)},
        headers=headers,
        timeout=120,
    )


def _journaled(server_url: str, admin: Account, actor: str, action: str) -> list[dict[str, Any]]:
    reply = httpx.get(
        f"{server_url}/api/audit",
        params={"user": actor, "action": action, "limit": 10000},
        headers=admin.headers(server_url),
    )
    assert reply.status_code == 200, reply.text
    return list(reply.json())


# -- /infer/{model}: params may not name another model, series or session -------------------------------------
def test_infer_params_overriding_model_or_image_refused_and_nothing_ran_on_the_foreign_series(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, stage: Stage, tmp_path: Path
) -> None:
    member = stage.headers["member"]
    alpha_uid, beta_uid = stage.alpha.patient.series_uid, stage.beta.patient.series_uid
    before = _segs_of(orthanc, stage.beta)
    journal_before = len(_journaled(server_url, admin, cohorts.alpha_member.username, "inference"))

    for key, value in (("image", beta_uid), ("model", "nothing_ct"), ("session_id", "some-session"), ("label", "/x")):
        reply = _infer(server_url, member, alpha_uid, json.dumps({key: value}))
        assert reply.status_code == 422, (key, reply.status_code, reply.text)
        assert repr(key) in reply.json()["detail"]
    assert _segs_of(orthanc, stage.beta) == before  # nothing ran on beta's series

    events = _journaled(server_url, admin, cohorts.alpha_member.username, "inference")[journal_before:]
    assert len(events) == 4
    assert {event["target"] for event in events} == {alpha_uid}  # the series checked, never the one smuggled in
    assert {event["outcome"] for event in events} != {"success"}

    # The same request without the override runs (the body the check read reaches MONAI Label intact).
    client = monailabel_client(server_url, cohorts.alpha_member, tmp_path)
    _, params = client.infer("everything_mr", alpha_uid, {"description": "checked"})
    assert params["model"] == "everything_mr" and params["seg_series_uid"]
    assert _segs_of(orthanc, stage.beta) == before


def test_malformed_params_on_infer_and_datastore_label_answer_422(server_url: str, stage: Stage) -> None:
    member = stage.headers["member"]
    alpha_uid = stage.alpha.patient.series_uid
    for params in ("{bad", "[1]", "null", '"text"', '{"a": NaN}'):
        reply = _infer(server_url, member, alpha_uid, params)
        assert reply.status_code == 422, (params, reply.status_code, reply.text)
        assert "params" in reply.json()["detail"]
        label = httpx.put(
            f"{server_url}/datastore/label",
            params={"image": alpha_uid, "tag": "final"},
            files={"params": (None, params), "label": ("label.nii.gz", b"not a label")},
            headers=member,
            timeout=60,
        )
        assert label.status_code == 422, (params, label.status_code, label.text)
        assert "params" in label.json()["detail"]
    twice = httpx.post(
        f"{server_url}/infer/everything_mr",
        params={"image": alpha_uid, "output": "json"},
        files=[("params", (None, "{}")), ("params", (None, json.dumps({"image": "x"})))],
        headers=member,
        timeout=60,
    )
    assert twice.status_code == 422 and "more than once" in twice.json()["detail"]


def test_datastore_label_params_overriding_image_refused(server_url: str, stage: Stage, orthanc: OrthancClient) -> None:
    before = _segs_of(orthanc, stage.beta)
    reply = httpx.put(
        f"{server_url}/datastore/label",
        params={"image": stage.alpha.patient.series_uid, "tag": "final"},
        files={
            "params": (None, json.dumps({"image": stage.beta.patient.series_uid})),
            "label": ("label.nii.gz", b"not a label"),
        },
        headers=stage.headers["member"],
        timeout=60,
    )
    assert reply.status_code == 422 and "'image'" in reply.json()["detail"]
    assert _segs_of(orthanc, stage.beta) == before


# -- /activelearning: the model is checked, the strategy is the path's, the answer names no server path --------
def test_activelearning_model_override_checked_against_the_callers_bound_cohorts(
    server_url: str, stage: Stage, platform: Settings
) -> None:
    member = stage.headers["member"]
    unbound = httpx.post(
        f"{server_url}/activelearning/uncertainty", json={"model": "nothing_ct"}, headers=member, timeout=120
    )
    assert unbound.status_code == 403 and "nothing_ct" in unbound.json()["detail"]
    unknown = httpx.post(f"{server_url}/activelearning/uncertainty", json={"model": "no_such"}, headers=member)
    assert unknown.status_code == 404
    strategy = httpx.post(f"{server_url}/activelearning/random", json={"strategy": "uncertainty"}, headers=member)
    assert strategy.status_code == 422 and "'strategy'" in strategy.json()["detail"]
    bound = httpx.post(
        f"{server_url}/activelearning/uncertainty",
        json={"model": "everything_mr", "candidates": 2},
        headers=member,
        timeout=300,
    )
    assert bound.status_code == 200, bound.text
    assert bound.json().get("model") == "everything_mr"


def test_no_server_paths_in_activelearning_answers(server_url: str, stage: Stage, platform: Settings) -> None:
    for strategy in ("first", "random"):
        reply = httpx.post(f"{server_url}/activelearning/{strategy}", json={}, headers=stage.headers["member"])
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        assert answer.get("id"), answer
        assert "path" not in answer
        assert str(platform.var_dir) not in reply.text and "/tmp/" not in reply.text
        assert not re.search(r'"/[^"]+/[^"]+"', reply.text), reply.text


# -- job listings -----------------------------------------------------------------------------------------------
def test_job_listings_filtered_per_cohort_admin(
    server_url: str, admin: Account, cohorts: Cohorts, stage: Stage, platform: Settings
) -> None:
    beta_admin = create_account("jobs.beta.admin")
    added = httpx.put(
        f"{server_url}/api/cohorts/{cohorts.beta}/members/{beta_admin.username}",
        json={"role": "admin"},
        headers=stage.headers["admin"],
    )
    assert added.status_code == 200, added.text
    callers = {"admin": stage.headers["admin"], "alpha": stage.headers["alpha_admin"]}
    callers["beta"] = beta_admin.headers(server_url)
    started = {
        name: _scoring_job(server_url, headers, stage.headers["admin"], name) for name, headers in callers.items()
    }
    try:
        listed = {}
        for name, headers in callers.items():
            reply = httpx.get(f"{server_url}/scoring/", params={"all": "true"}, headers=headers)
            assert reply.status_code == 200, reply.text
            listed[name] = reply.json()
        ids = {name: {job["id"] for job in jobs} for name, jobs in listed.items()}
        assert set(started.values()) <= ids["admin"]
        assert started["alpha"] in ids["alpha"] and not {started["admin"], started["beta"]} & ids["alpha"]
        assert started["beta"] in ids["beta"] and not {started["admin"], started["alpha"]} & ids["beta"]
        for name, own in (("alpha", cohorts.alpha), ("beta", cohorts.beta)):
            text = json.dumps(listed[name])
            assert str(platform.var_dir) not in text and "bundle_path" not in text
            assert all(job["request"]["awesomme_cohorts"] == [own] for job in listed[name])
        latest = httpx.get(f"{server_url}/scoring/", headers=callers["alpha"])
        assert latest.status_code == 200 and latest.json()["id"] == started["alpha"]
        for path in ("/train/", "/batch/infer"):  # the other listings are ours too: no other cohort's jobs
            reply = httpx.get(f"{server_url}{path}", params={"all": "true"}, headers=callers["alpha"])
            assert reply.status_code in (200, 404), reply.text
            jobs = reply.json() if reply.status_code == 200 else []
            assert all(job["request"].get("awesomme_cohorts") == [cohorts.alpha] for job in jobs)
    finally:
        httpx.delete(f"{server_url}/scoring/", headers=stage.headers["admin"])


def _scoring_job(server_url: str, headers: dict[str, str], admin: dict[str, str], name: str) -> str:
    """A scoring job for a method that does not exist, stopped once running (one job at a time: MONAI Label's rule)."""
    reply = httpx.post(f"{server_url}/scoring/no_such_method_{name}", json={}, headers=headers, timeout=60)
    assert reply.status_code == 200, reply.text
    job_id = str(reply.json()["id"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs = httpx.get(f"{server_url}/scoring/", params={"all": "true"}, headers=admin).json()
        status = next(job["status"] for job in jobs if job["id"] == job_id)
        if status != "SUBMITTED":
            break
        time.sleep(0.1)
    httpx.delete(f"{server_url}/scoring/", headers=admin)  # ends it, if it still runs
    return job_id


# -- existence oracles ------------------------------------------------------------------------------------------
def _same_404(absent: httpx.Response, foreign: httpx.Response, absent_uid: str, foreign_uid: str) -> None:
    assert absent.status_code == foreign.status_code == 404, (absent.text, foreign.text)
    assert absent.json()["detail"].replace(absent_uid, "<uid>") == foreign.json()["detail"].replace(
        foreign_uid, "<uid>"
    )


def test_identical_404_for_absent_and_foreign_series(server_url: str, stage: Stage, cohorts: Cohorts) -> None:
    member, alpha_admin = stage.headers["member"], stage.headers["alpha_admin"]
    foreign = stage.beta.patient.series_uid
    probes: list[tuple[str, str, dict[str, str], Callable[[str], dict[str, Any]]]] = [
        ("GET", "/datastore/image/info", member, lambda uid: {"params": {"image": uid}}),
        ("GET", "/datastore/image", member, lambda uid: {"params": {"image": uid}}),
        ("GET", "/api/segmentations", member, lambda uid: {"params": {"series_uid": uid}}),
        ("GET", "/api/models", member, lambda uid: {"params": {"series_uid": uid}}),
        ("POST", "/infer/everything_mr", member, lambda uid: {"params": {"image": uid, "output": "json"}}),
        (
            "POST",
            "/api/radiomics",
            member,
            lambda uid: {"json": {"series_uid": uid, "seg_uid": "1.2.3", "preset": "ibsi-original"}},
        ),
        (
            "POST",
            "/api/scores",
            member,
            lambda uid: {"json": {"target_kind": "series", "target_uid": uid, "score_type": "free_text", "value": "x"}},
        ),
        (
            "POST",
            f"/api/cohorts/{cohorts.alpha}/studies",
            alpha_admin,
            lambda uid: {"json": {"series_uids": [uid]}},
        ),
    ]
    for method, path, headers, request in probes:
        absent = httpx.request(method, server_url + path, headers=headers, timeout=60, **request(ABSENT_SERIES))
        hidden = httpx.request(method, server_url + path, headers=headers, timeout=60, **request(foreign))
        _same_404(absent, hidden, ABSENT_SERIES, foreign)


# -- invite codes and usernames ---------------------------------------------------------------------------------
def test_invite_code_username_enumeration_bounded(server_url: str, cohorts: Cohorts, platform: Settings) -> None:
    created = httpx.post(
        f"{server_url}/api/cohorts/{cohorts.alpha}/invites",
        json={"role": "member", "max_uses": 5, "expires_in_hours": 1},
        headers=cohorts.alpha_admin.headers(server_url),
    )
    assert created.status_code == 201, created.text
    code = created.json()["code"]
    taken = [cohorts.alpha_member.username, cohorts.beta_member.username, cohorts.loner.username]
    limit = platform.invite_failures_per_window
    answers = []
    for attempt in range(limit + 2):  # every guess from an address of its own: only the code's count can stop them
        body = {"username": taken[attempt % len(taken)], "password": "enumerating-password-1", "code": code}
        answers.append(post_from(next_loopback(), f"{server_url}/api/auth/register", json=body).status_code)
    assert answers[:limit] == [409] * limit
    assert answers[limit:] == [429, 429]
    fresh = {"username": "enumeration.fresh", "password": "enumerating-password-1", "code": code}
    assert post_from(next_loopback(), f"{server_url}/api/auth/register", json=fresh).status_code == 429


# -- membership: cohort admins change roles of members, they do not add people ----------------------------------
def test_membership_put_for_a_non_member_404_identical_for_existing_and_absent_accounts(
    server_url: str, cohorts: Cohorts, stage: Stage
) -> None:
    alpha_admin = stage.headers["alpha_admin"]
    base = f"{server_url}/api/cohorts/{cohorts.alpha}/members"
    existing = httpx.put(f"{base}/{cohorts.beta_member.username}", json={"role": "member"}, headers=alpha_admin)
    absent = httpx.put(f"{base}/no.such.account", json={"role": "member"}, headers=alpha_admin)
    assert existing.status_code == absent.status_code == 404
    assert existing.json()["detail"] == f"no member {cohorts.beta_member.username}"
    assert absent.json()["detail"] == "no member no.such.account"
    members = httpx.get(base, headers=alpha_admin).json()
    assert cohorts.beta_member.username not in {member["username"] for member in members}
    removed = httpx.delete(f"{base}/{cohorts.beta_member.username}", headers=alpha_admin)
    gone = httpx.delete(f"{base}/no.such.account", headers=alpha_admin)
    assert removed.status_code == gone.status_code == 404
    assert removed.json()["detail"].replace(cohorts.beta_member.username, "x") == gone.json()["detail"].replace(
        "no.such.account", "x"
    )


def test_membership_role_change_of_an_existing_member_works(server_url: str, cohorts: Cohorts, stage: Stage) -> None:
    alpha_admin = stage.headers["alpha_admin"]
    member_url = f"{server_url}/api/cohorts/{cohorts.alpha}/members/{cohorts.alpha_member.username}"
    try:
        promoted = httpx.put(member_url, json={"role": "admin"}, headers=alpha_admin)
        assert promoted.status_code == 200, promoted.text
        roles = {m["username"]: m["role"] for m in httpx.get(member_url.rsplit("/", 1)[0], headers=alpha_admin).json()}
        assert roles[cohorts.alpha_member.username] == "admin"
    finally:
        demoted = httpx.put(member_url, json={"role": "member"}, headers=alpha_admin)
        assert demoted.status_code == 200, demoted.text


def test_platform_admin_can_add_any_user(server_url: str, cohorts: Cohorts, stage: Stage) -> None:
    newcomer = create_account("added.by.platform.admin")
    url = f"{server_url}/api/cohorts/{cohorts.alpha}/members/{newcomer.username}"
    reply = httpx.put(url, json={"role": "member"}, headers=stage.headers["admin"])
    assert reply.status_code == 200, reply.text
    mine = httpx.get(f"{server_url}/api/cohorts", headers=newcomer.headers(server_url)).json()
    assert {cohort["id"] for cohort in mine} == {cohorts.alpha}
    absent = httpx.put(
        f"{server_url}/api/cohorts/{cohorts.alpha}/members/no.such.account",
        json={"role": "member"},
        headers=stage.headers["admin"],
    )
    assert absent.status_code == 404


# -- bounds on knobs that multiply work -------------------------------------------------------------------------
def test_bounds_on_work_multiplying_knobs_answer_422_naming_the_knob(
    server_url: str, stage: Stage, cohorts: Cohorts, tmp_path: Path
) -> None:
    member = stage.headers["member"]
    many = httpx.post(
        f"{server_url}/activelearning/uncertainty",
        json={"model": "everything_mr", "candidates": 100000},
        headers=member,
    )
    assert many.status_code == 422 and "candidates" in many.json()["detail"]
    base = {"series_uid": stage.alpha.patient.series_uid, "seg_uid": "1.2.3.4"}
    original: dict[str, Any] = {"Original": {}}
    for parameters, knob in (
        ({"imageType": original, "setting": {"binCount": 100000}}, "binCount"),
        ({"imageType": {"LoG": {"sigma": [1.0] * 50}}}, "sigma"),
        ({"imageType": {"Wavelet": {"level": 12}}}, "level"),
        ({"imageType": original, "setting": {"resampledPixelSpacing": [0.001, 0.001, 0.001]}}, "resampledPixelSpacing"),
        ({"imageType": original, "setting": {"distances": list(range(1, 40))}}, "distances"),
    ):
        reply = httpx.post(f"{server_url}/api/radiomics", json={**base, "parameters": parameters}, headers=member)
        assert reply.status_code == 422, (knob, reply.status_code, reply.text)
        assert knob in reply.json()["detail"]

    # Data-dependent: the gray levels a binWidth makes over the region (everything_mr's SEG covers the whole series).
    client = monailabel_client(server_url, cohorts.alpha_member, tmp_path)
    _, params = client.infer("everything_mr", stage.alpha.patient.series_uid, {})
    fine = {"imageType": original, "featureClass": {"glcm": []}, "setting": {"binWidth": 0.0001}}
    body = {"series_uid": stage.alpha.patient.series_uid, "seg_uid": params["seg_series_uid"], "parameters": fine}
    reply = httpx.post(f"{server_url}/api/radiomics", json=body, headers=member, timeout=120)
    assert reply.status_code == 422 and "binWidth" in reply.json()["detail"], reply.text


def test_no_server_paths_in_label_save_errors(server_url: str, stage: Stage, platform: Settings) -> None:
    reply = httpx.put(
        f"{server_url}/datastore/label",
        params={"image": stage.alpha.patient.series_uid, "tag": "final"},
        files={"params": (None, "{}"), "label": ("label.nii.gz", b"not a label")},
        headers=stage.headers["member"],
        timeout=60,
    )
    assert reply.status_code == 422, reply.text
    assert "cannot be read" in reply.json()["detail"]
    assert str(platform.var_dir) not in reply.text and "/tmp" not in reply.text and ".nii.gz" not in reply.text


def test_job_body_model_override_runs_the_paths_model(server_url: str, stage: Stage) -> None:
    """MONAI Label merges a job's JSON body after the path's model: the access table pins the checked one."""
    admin = stage.headers["admin"]
    reply = httpx.post(
        f"{server_url}/batch/infer/everything_mr",
        params={"images": "unlabeled"},
        json={"model": "nothing_ct", "save_label": False},
        headers=stage.headers["alpha_admin"],
        timeout=60,
    )
    try:
        assert reply.status_code == 200, reply.text
        assert reply.json()["request"]["model"] == "everything_mr"
    finally:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # stop it once it runs (or has ended)
            jobs = httpx.get(f"{server_url}/batch/infer", params={"all": "true"}, headers=admin).json()
            if next(job["status"] for job in jobs if job["id"] == reply.json()["id"]) != "SUBMITTED":
                break
            time.sleep(0.1)
        httpx.delete(f"{server_url}/batch/infer", headers=admin)
