"""3D Slicer's MONAI Label module on another machine: Next Sample, replayed as the module makes it.

The module asks ``POST /activelearning/{strategy}`` with its token, then downloads with
``urllib.request.urlretrieve(f"{server}/datastore/image?image={quote_plus(sample['id'])}", path)``: no
Authorization header, no cookie. It saves under ``sample.get('name', id)`` and checks ``sample.get('checksum')``.
"""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx
import numpy as np
import pytest
import SimpleITK as sitk
from sqlalchemy import select

from awesomme.core.config import Settings
from awesomme.core.db import session_scope
from awesomme.models import AuditEvent
from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import (
    Account,
    StoredPatient,
    attach_to_cohort,
    create_account,
    monailabel_client,
    store_patient,
)


class Stage:
    def __init__(self, cohort: int, member: Account, colleague: Account, series: dict[str, StoredPatient]) -> None:
        self.cohort, self.member, self.colleague, self.series = cohort, member, colleague, series


def _new_cohort(server_url: str, admin: Account, name: str, members: list[Account]) -> int:
    headers = admin.headers(server_url)
    reply = httpx.post(
        f"{server_url}/api/cohorts", json={"name": name, "description": name, "identified": True}, headers=headers
    )
    assert reply.status_code == 201, reply.text
    cohort = int(reply.json()["id"])
    for person in members:
        url = f"{server_url}/api/cohorts/{cohort}/members/{person.username}"
        assert httpx.put(url, json={"role": "member"}, headers=headers).status_code == 200
    return cohort


def _series_uid(patient: StoredPatient) -> str:
    return str(patient.datasets[0].SeriesInstanceUID)


@pytest.fixture(scope="module")
def stage(
    server_url: str,
    platform: Settings,
    admin: Account,
    orthanc: OrthancClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Stage:
    member, colleague = create_account("slicer.remote"), create_account("slicer.colleague")
    cohort = _new_cohort(server_url, admin, "slicer-remote", [member, colleague])
    patients = [
        store_patient(orthanc, "osteosarcoma-mr", 311, tmp_path_factory.mktemp("slicer-mr")),
        store_patient(orthanc, "chest-ct", 312, tmp_path_factory.mktemp("slicer-ct")),
    ]
    attach_to_cohort(server_url, admin, cohort, studies=[str(p.datasets[0].StudyInstanceUID) for p in patients])
    return Stage(cohort, member, colleague, {_series_uid(p): p for p in patients})


def _next_sample(server_url: str, account: Account, tmp_path: Path, strategy: str = "random") -> dict[str, Any]:
    sample = monailabel_client(server_url, account, tmp_path).next_sample(strategy, {})
    assert isinstance(sample, dict) and sample.get("id"), sample
    return sample


def _download(server_url: str, image_id: str, path: Path) -> Path:
    """The module's download, call for call."""
    download_uri = f"{server_url}/datastore/image?image={quote_plus(image_id)}"
    urllib.request.urlretrieve(download_uri, path)  # noqa: S310 - the module's own call
    return path


def _refused(server_url: str, image_id: str, path: Path) -> int:
    with pytest.raises(urllib.error.HTTPError) as refused:
        _download(server_url, image_id, path)
    return refused.value.code


def _exported(series_uid: str, actor: str, count: int) -> list[AuditEvent]:
    """The downloads journaled as ``actor`` (written once the answer has gone: they may take a moment)."""
    deadline = time.monotonic() + 10
    while True:
        with session_scope() as session:
            query = select(AuditEvent).where(
                AuditEvent.action == "data.exported", AuditEvent.target == series_uid, AuditEvent.actor == actor
            )
            events = list(session.scalars(query.order_by(AuditEvent.id)))
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def test_the_modules_next_sample_downloads_once_without_a_token_and_opens_in_simpleitk(
    server_url: str, stage: Stage, tmp_path: Path
) -> None:
    sample = _next_sample(server_url, stage.member, tmp_path)
    image_id = sample["id"]
    assert sample["name"] == f"{image_id}.nii.gz"
    before = len(_exported(image_id, stage.member.username, 0))

    path = _download(server_url, image_id, tmp_path / sample.get("name", image_id))
    data = path.read_bytes()
    assert data[:2] == b"\x1f\x8b"  # gzip
    assert sample["checksum"] == f"SHA256:{hashlib.sha256(data).hexdigest()}"
    image = sitk.ReadImage(str(path))
    datasets = stage.series[image_id].datasets
    first = datasets[0]
    assert image.GetSize() == (int(first.Columns), int(first.Rows), len(datasets))
    positions = sorted(
        float(np.dot(ds.ImagePositionPatient, np.cross(*np.reshape(ds.ImageOrientationPatient, (2, 3)))))
        for ds in datasets
    )
    expected = (float(first.PixelSpacing[1]), float(first.PixelSpacing[0]), positions[1] - positions[0])
    assert image.GetSpacing() == pytest.approx(expected, rel=1e-4)

    events = _exported(image_id, stage.member.username, before + 1)
    assert len(events) == before + 1 and events[-1].outcome == "success"
    assert events[-1].params.get("sample_grant")

    assert _refused(server_url, image_id, tmp_path / "again.nii.gz") == 401  # once


def test_a_grant_opens_only_its_own_series_and_no_grant_opens_nothing(
    server_url: str, stage: Stage, tmp_path: Path
) -> None:
    assert _refused(server_url, next(iter(stage.series)), tmp_path / "none.nii.gz") == 401  # nothing granted
    sample = _next_sample(server_url, stage.member, tmp_path)
    other = next(uid for uid in stage.series if uid != sample["id"])
    assert _refused(server_url, other, tmp_path / "other.nii.gz") == 401
    assert _refused(server_url, "", tmp_path / "empty.nii.gz") == 401
    # The grant was not spent by those refusals: the sample itself still comes, once.
    assert _download(server_url, sample["id"], tmp_path / "sample.nii.gz").stat().st_size > 0
    assert _refused(server_url, sample["id"], tmp_path / "twice.nii.gz") == 401


def test_a_grant_acts_as_its_user_and_never_widens_what_they_see(
    server_url: str, stage: Stage, admin: Account, tmp_path: Path
) -> None:
    sample = _next_sample(server_url, stage.colleague, tmp_path)
    url = f"{server_url}/api/cohorts/{stage.cohort}/members/{stage.colleague.username}"
    assert httpx.delete(url, headers=admin.headers(server_url)).status_code in (200, 204)
    # In no cohort now: the grant does not make them a member again (403), nor shows them the series.
    assert _refused(server_url, sample["id"], tmp_path / "gone.nii.gz") == 403
    events = _exported(sample["id"], stage.colleague.username, 1)
    assert events and events[-1].outcome == "denied" and events[-1].params.get("sample_grant")


def test_other_unauthenticated_reads_of_the_datastore_stay_refused(server_url: str, stage: Stage) -> None:
    image_id = next(iter(stage.series))
    for path in ("/datastore/image/info", "/datastore/", "/info/"):
        assert httpx.get(f"{server_url}{path}", params={"image": image_id}).status_code == 401
    assert httpx.head(f"{server_url}/datastore/image", params={"image": image_id}).status_code == 401
