"""The uncertainty strategy as 3D Slicer's module asks for it: no ``model`` parameter.

It runs a model bound to one of the caller's cohorts that applies to their series' modality (never a CT model for
someone whose cohorts hold only MR), or answers 422 naming the parameter.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from awesomme.core.config import Settings
from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import Account, attach_to_cohort, create_account, monailabel_client, store_patient


def _cohort_with(server_url: str, admin: Account, name: str, person: Account) -> int:
    headers = admin.headers(server_url)
    reply = httpx.post(f"{server_url}/api/cohorts", json={"name": name, "description": name}, headers=headers)
    assert reply.status_code == 201, reply.text
    cohort = int(reply.json()["id"])
    url = f"{server_url}/api/cohorts/{cohort}/members/{person.username}"
    assert httpx.put(url, json={"role": "member"}, headers=headers).status_code == 200
    return cohort


def _bind_also(server_url: str, admin: Account, model: str, cohort: int) -> None:
    """Add a cohort to a model's binding, keeping the cohorts other tests bound it to."""
    headers = admin.headers(server_url)
    models = httpx.get(f"{server_url}/api/models", headers=headers).json()
    listed = models if isinstance(models, list) else models.get("models", [])
    current = next((m.get("cohorts", []) for m in listed if m.get("name") == model), [])
    ids = sorted({int(ref["id"]) if isinstance(ref, dict) else int(ref) for ref in current} | {cohort})
    reply = httpx.put(f"{server_url}/api/models/{model}/cohorts", json={"cohorts": ids}, headers=headers)
    assert reply.status_code == 200, reply.text


@pytest.fixture(scope="module")
def mr_reader(
    server_url: str,
    platform: Settings,
    admin: Account,
    orthanc: OrthancClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Account, str]:
    reader = create_account("slicer.mr.reader")
    cohort = _cohort_with(server_url, admin, "slicer-mr-only", reader)
    patient = store_patient(orthanc, "osteosarcoma-mr", 321, tmp_path_factory.mktemp("uncertainty-mr"))
    attach_to_cohort(server_url, admin, cohort, studies=[str(patient.datasets[0].StudyInstanceUID)])
    for model in ("everything_mr", "nothing_ct"):  # a CT model bound to an MR-only cohort must still not run
        _bind_also(server_url, admin, model, cohort)
    return reader, str(patient.datasets[0].SeriesInstanceUID)


def test_uncertainty_without_a_model_runs_the_bound_model_of_the_callers_modality(
    server_url: str, mr_reader: tuple[Account, str], tmp_path: Path
) -> None:
    reader, series_uid = mr_reader
    sample = monailabel_client(server_url, reader, tmp_path).next_sample("uncertainty", {})
    assert sample["model"] == "everything_mr"
    assert sample["id"] == series_uid and sample["Modality"] == "MR"
    assert sample["name"] == f"{series_uid}.nii.gz" and str(sample["checksum"]).startswith("SHA256:")


def test_uncertainty_without_a_model_and_none_applicable_answers_422_naming_the_parameter(
    server_url: str, platform: Settings, admin: Account
) -> None:
    unbound = create_account("slicer.unbound.reader")
    _cohort_with(server_url, admin, "slicer-no-models", unbound)  # no series, no model bound
    reply = httpx.post(
        f"{server_url}/activelearning/uncertainty", json={}, headers=unbound.headers(server_url), timeout=120
    )
    assert reply.status_code == 422 and "'model'" in reply.json()["detail"]


def test_uncertainty_without_a_model_never_runs_an_mr_model_for_a_ct_only_reader(
    server_url: str,
    platform: Settings,
    admin: Account,
    orthanc: OrthancClient,
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> None:
    reader = create_account("slicer.ct.reader")
    cohort = _cohort_with(server_url, admin, "slicer-ct-only", reader)
    patient = store_patient(orthanc, "chest-ct", 322, tmp_path_factory.mktemp("uncertainty-ct"))
    attach_to_cohort(server_url, admin, cohort, studies=[str(patient.datasets[0].StudyInstanceUID)])
    for model in ("everything_mr", "nothing_ct"):  # by name alone the MR model would come first
        _bind_also(server_url, admin, model, cohort)
    sample = monailabel_client(server_url, reader, tmp_path).next_sample("uncertainty", {})
    assert sample["model"] == "nothing_ct" and sample["Modality"] == "CT"
    assert sample["id"] == str(patient.datasets[0].SeriesInstanceUID)
