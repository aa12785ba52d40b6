"""Cohort batches on the real server: a dry run over mixed modalities, who may start and read batches, and batches
run to the end on a real LocalCluster of two worker processes (segmentation, radiomics, a failing item)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from sqlalchemy import delete

from awesomme.core.config import Settings
from awesomme.core.db import session_scope
from awesomme.models import ModelBinding
from awesomme.orthanc.client import OrthancClient
from awesomme.phantoms import generate_patient
from awesomme.runtime.platform import start_server
from tests.dicom_checks import dciodvfy_errors
from tests.integration.conftest import (
    SMALL_SHAPE,
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
    """A cohort of three MR patients, one MR patient whose slices cannot make a volume, one CT patient; its admin
    and its member."""

    cohort: int
    admin: Account
    member: Account
    mr: list[StoredPatient]
    broken: StoredPatient
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
    reply = httpx.post(
        f"{server_url}/api/cohorts", json={"name": "batch-gamma", "description": "batches"}, headers=headers
    )
    assert reply.status_code == 201, reply.text
    cohort = reply.json()["id"]
    people = {role: create_account(f"gamma.{role}") for role in ("admin", "member")}
    for role, account in people.items():
        url = f"{server_url}/api/cohorts/{cohort}/members/{account.username}"
        assert httpx.put(url, json={"role": role}, headers=headers).status_code == 200
    mr = [store_patient(orthanc, "osteosarcoma-mr", seed, out / f"mr{seed}") for seed in (2501, 2502, 2503)]
    ct = store_patient(orthanc, "chest-ct", 2511, out / "ct")
    broken = _two_slices_at_one_position(orthanc, out / "broken")
    attach_to_cohort(server_url, admin, cohort, studies=[p.patient.study_uid for p in (*mr, broken, ct)])
    bind_model(server_url, admin, "everything_mr", ["alpha", "batch-gamma"])
    bind_model(server_url, admin, "nothing_ct", ["batch-gamma"])
    return Gamma(cohort, people["admin"], people["member"], mr, broken, ct)


def _two_slices_at_one_position(orthanc: OrthancClient, out: Path) -> StoredPatient:
    """An MR series Orthanc stores but the platform cannot decode into a volume: its item must fail, alone."""
    patient = generate_patient("osteosarcoma-mr", 2504, out, shape=SMALL_SHAPE)
    datasets: list[pydicom.Dataset] = [pydicom.dcmread(path) for path in patient.dicom_files]
    datasets[1].ImagePositionPatient = datasets[0].ImagePositionPatient
    orthanc.store(datasets)
    return StoredPatient(patient, datasets)


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
    assert _series_of(answer, "matched") == {p.patient.series_uid for p in (*gamma.mr, gamma.broken)}
    assert _series_of(answer, "unmatched") == {gamma.ct.patient.series_uid}
    assert answer["counts"] == {"matched": 4, "unmatched": 1, "ambiguous": 0}
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


# -- batches run to the end on a LocalCluster of two worker processes ---------------------------------------------
def _wait_done(client: httpx.Client, batch_id: int, timeout_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        status = client.get(f"/api/batches/{batch_id}").json()
        if status["status"] in ("done", "cancelled") or time.monotonic() > deadline:
            return dict(status)
        time.sleep(1)


def _segs_in_orthanc(orthanc: OrthancClient, study_uid: str) -> list[pydicom.Dataset]:
    hits = orthanc.dicomweb.search_for_series(study_uid, search_filters={"Modality": "SEG"})
    return [pydicom.Dataset.from_json(hit) for hit in hits]


@pytest.fixture(scope="module")
def segmentation_batch(server_url: str, gamma: Gamma) -> dict[str, Any]:
    with client_for(server_url, gamma.admin) as client:
        body = _segmentation(gamma, selection={"modality": "MR"}, description="cohort run", tag="b25")
        reply = client.post("/api/batches", json=body)
        assert reply.status_code == 202, reply.text
        batch_id = reply.json()["id"]
        status = _wait_done(client, batch_id)
        items = client.get(f"/api/batches/{batch_id}/items").json()
        failed = client.get(f"/api/batches/{batch_id}/items", params={"status": "failed"}).json()
    return {"id": batch_id, "status": status, "items": items, "failed": failed}


def test_a_segmentation_batch_ends_with_every_series_done_and_one_seg_per_series_in_orthanc(
    gamma: Gamma, orthanc: OrthancClient, segmentation_batch: dict[str, Any], tmp_path: Path
) -> None:
    status = segmentation_batch["status"]
    assert status["status"] == "done", status
    assert status["counts"] == {"pending": 0, "running": 0, "done": 3, "failed": 1}, segmentation_batch["failed"]
    assert status["started"] is not None and status["eta_s"] == 0
    outputs = {item["series_uid"]: item["output"] for item in segmentation_batch["items"] if item["status"] == "done"}
    assert set(outputs) == {p.patient.series_uid for p in gamma.mr}
    for patient in gamma.mr:
        segs = _segs_in_orthanc(orthanc, patient.patient.study_uid)
        assert [str(seg.SeriesInstanceUID) for seg in segs] == [outputs[patient.patient.series_uid]]
        assert str(segs[0].SeriesDescription) == "b25 - everything_mr 0.0.1 (DEMO weights - not for clinical use)"
    (seg,) = orthanc.retrieve_series(gamma.mr[0].patient.study_uid, outputs[gamma.mr[0].patient.series_uid])
    assert seg.ContentDescription == "cohort run (DEMO weights - not for clinical use) [b25]"  # description, tag
    seg.save_as(tmp_path / "seg.dcm")
    assert dciodvfy_errors(tmp_path / "seg.dcm") == []


def test_a_failing_item_keeps_its_error_and_the_batch_goes_on(
    gamma: Gamma, orthanc: OrthancClient, segmentation_batch: dict[str, Any]
) -> None:
    (failed,) = segmentation_batch["failed"]
    assert failed["series_uid"] == gamma.broken.patient.series_uid
    assert "position" in failed["error"], failed["error"]
    assert _segs_in_orthanc(orthanc, gamma.broken.patient.study_uid) == []


def test_a_radiomics_batch_gives_the_feature_sets_a_single_extraction_gives(
    gamma: Gamma, gamma_admin: httpx.Client, segmentation_batch: dict[str, Any]
) -> None:
    body = {
        "cohort": gamma.cohort,
        "kind": "radiomics",
        "preset": "ibsi-original",
        "seg": {"description": "cohort run"},
        "tag": "b25-features",
    }
    plan = gamma_admin.post("/api/batches", json={**body, "dry_run": True}).json()
    assert _series_of(plan, "matched") == {p.patient.series_uid for p in gamma.mr}
    reply = gamma_admin.post("/api/batches", json=body)
    assert reply.status_code == 202, reply.text
    status = _wait_done(gamma_admin, reply.json()["id"])
    assert status["counts"] == {"pending": 0, "running": 0, "done": 3, "failed": 0}, status
    items = gamma_admin.get(f"/api/batches/{status['id']}/items").json()
    first = items[0]
    batch_set = gamma_admin.get(f"/api/radiomics/{first['output']}").json()
    assert batch_set["tag"] == "b25-features" and batch_set["seg_uid"] == first["inputs"]["seg_uid"]
    single = gamma_admin.post(
        "/api/radiomics",
        json={"series_uid": first["series_uid"], "seg_uid": first["inputs"]["seg_uid"], "preset": "ibsi-original"},
        timeout=120,
    )
    assert single.status_code == 201, single.text
    assert single.json()["features"] == batch_set["features"]


def test_a_classification_batch_runs_in_the_runner_and_keeps_each_refusal_as_the_items_error(
    gamma: Gamma, gamma_admin: httpx.Client
) -> None:
    """The radiomics batch's feature sets (tag b25-features, preset ibsi-original) are not what the classifier reads
    (osteosarcoma-mr): every item fails with that reason, and the batch still ends."""
    with _classifier_bound_to(gamma.cohort):
        body = {"cohort": gamma.cohort, "kind": "classification", "model": "osteosarcoma_response"}
        status = _classify(gamma, gamma_admin, body)
    failed = gamma_admin.get(f"/api/batches/{status['id']}/items", params={"status": "failed"}).json()
    assert all("reads preset osteosarcoma-mr" in item["error"] for item in failed), failed


@contextmanager
def _classifier_bound_to(cohort: int) -> Iterator[None]:
    """A classifier's binding is its YAML's cohorts unless the database says otherwise: for this test only."""
    with session_scope() as session:
        assert session.get(ModelBinding, "osteosarcoma_response") is None
        session.add(ModelBinding(model_name="osteosarcoma_response", cohort_ids=[cohort], updated_by="platform.admin"))
    try:
        yield
    finally:
        with session_scope() as session:
            session.execute(delete(ModelBinding).where(ModelBinding.model_name == "osteosarcoma_response"))


def _classify(gamma: Gamma, gamma_admin: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    plan = gamma_admin.post("/api/batches", json={**body, "input_tag": "b25-features", "dry_run": True}).json()
    assert _series_of(plan, "matched") == {p.patient.series_uid for p in gamma.mr}
    reply = gamma_admin.post("/api/batches", json={**body, "input_tag": "b25-features"})
    assert reply.status_code == 202, reply.text
    status = _wait_done(gamma_admin, reply.json()["id"], timeout_s=60)
    assert status["status"] == "done" and status["counts"]["failed"] == 3, status
    return status


def _cli(token: str, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "AWESOMME_TOKEN": token}
    command = [sys.executable, "-m", "awesomme.cli", "batch", *args]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)


def test_the_cli_lists_watches_with_a_progress_bar_and_dry_runs(
    server_url: str, gamma: Gamma, gamma_admin: httpx.Client, segmentation_batch: dict[str, Any]
) -> None:
    created = gamma_admin.post("/api/users/me/tokens", json={"name": "batch cli", "expires_in_days": 1})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    listed = _cli(token, "list", "--server", server_url, "--cohort", str(gamma.cohort))
    assert listed.returncode == 0, listed.stderr
    assert any(
        line.split("\t")[:3] == [str(segmentation_batch["id"]), "segmentation", "done"]
        for line in listed.stdout.splitlines()
    )
    watched = _cli(token, "watch", str(segmentation_batch["id"]), "--server", server_url)
    assert watched.returncode == 2  # done, with a failed item: named on stderr
    assert "4/4" in watched.stderr and f"failed: {gamma.broken.patient.series_uid}" in watched.stderr
    planned = _cli(
        token, "start", "--server", server_url, "--cohort", str(gamma.cohort), "--kind", "segmentation",
        "--model", "everything_mr", "--match", "^T2", "--dry-run",
    )  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["counts"] == {"matched": 4, "unmatched": 1, "ambiguous": 0}
    refused = _cli("", "list", "--server", server_url, "--cohort", str(gamma.cohort))
    assert refused.returncode == 1 and "AWESOMME_TOKEN" in refused.stderr


def test_a_batch_whose_server_is_killed_completes_after_a_restart_storing_no_seg_twice(
    platform: Settings, server_url: str, gamma: Gamma, orthanc: OrthancClient, segmentation_batch: dict[str, Any]
) -> None:
    """SIGKILL by pid mid-batch, a restart on the same var/ and database: the batch completes, one SEG per series
    and run in Orthanc, the failed item's error kept; the two runs' SEGs then make a radiomics dry run ambiguous."""
    with client_for(server_url, gamma.admin) as client:
        body = _segmentation(gamma, selection={"modality": "MR"}, description="cohort run", tag="crash")
        batch_id = client.post("/api/batches", json=body).json()["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            counts = client.get(f"/api/batches/{batch_id}").json()["counts"]
            if counts["running"]:  # items handed to the workers: kill now
                break
            time.sleep(0.02)
    assert counts["running"] > 0, counts  # killed in the middle
    pid = int((platform.var_dir / "server.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    try:
        start_server(platform)
    except RuntimeError:  # its check can read the new server's pid while it re-executes itself: look again
        start_server(platform)
    with client_for(server_url, gamma.admin) as client:
        status = _wait_done(client, batch_id)
        assert status["status"] == "done" and status["counts"]["done"] == 3 and status["counts"]["failed"] == 1
        (failed,) = client.get(f"/api/batches/{batch_id}/items", params={"status": "failed"}).json()
        assert failed["series_uid"] == gamma.broken.patient.series_uid and "position" in failed["error"]
        items = client.get(f"/api/batches/{batch_id}/items", params={"status": "done"}).json()
        for patient in gamma.mr:
            segs = [str(s.SeriesInstanceUID) for s in _segs_in_orthanc(orthanc, patient.patient.study_uid)]
            mine = next(item["output"] for item in items if item["series_uid"] == patient.patient.series_uid)
            assert len(segs) == 2 and segs.count(mine) == 1  # the first batch's and this one's, once each
        plan = client.post(
            "/api/batches",
            json={
                "cohort": gamma.cohort,
                "kind": "radiomics",
                "preset": "ibsi-original",
                "seg": {"description": "cohort run"},
                "dry_run": True,
            },
        ).json()
    assert _series_of(plan, "ambiguous") == {p.patient.series_uid for p in gamma.mr}
    assert all(len(s["candidates"]) == 2 for p in plan["patients"] for s in p["ambiguous"])
