"""One series lookup per request: a member's inference and radiomics extraction resolve their series in Orthanc once.

The server logs, for each request that called Orthanc, how many calls it made and of which kinds (identifiers
masked); these tests read that line after each request.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from awesomme.core.config import Settings
from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import (
    Account,
    Cohorts,
    StoredPatient,
    attach_to_cohort,
    bind_model,
    client_for,
    store_patient,
)

CALLS_LINE = re.compile(r"(\w+) (\S+) answered (\d+) after (\d+) Orthanc calls: (.*)$")


def _calls_of(settings: Settings, method: str, path: str, since: int) -> Counter[str]:
    """The Orthanc calls the server logged for the ``method path`` answered after byte ``since`` of its log (the line
    is written once the answer is sent: waited for)."""
    deadline = time.monotonic() + 10
    while True:
        text = (settings.var_dir / "log" / "server.log").read_bytes()[since:].decode(errors="replace")
        for line in text.splitlines():
            match = CALLS_LINE.search(line)
            if match and match.group(1) == method and match.group(2) == path:
                found: Counter[str] = Counter()
                for part in match.group(5).split(", "):
                    count, _, kind = part.partition(" ")
                    found[kind] = int(count)
                assert sum(found.values()) == int(match.group(4))
                return found
        assert time.monotonic() < deadline, f"no Orthanc calls logged for {method} {path}"
        time.sleep(0.1)


def _log_size(settings: Settings) -> int:
    return (settings.var_dir / "log" / "server.log").stat().st_size


@pytest.fixture(scope="module")
def patient(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> StoredPatient:
    stored = store_patient(orthanc, "osteosarcoma-mr", 931, tmp_path_factory.mktemp("lookup"))
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[stored.patient.study_uid])
    bind_model(server_url, admin, "everything_mr", ["alpha"])
    return stored


def test_a_members_inference_resolves_its_series_once(
    platform: Settings, server_url: str, cohorts: Cohorts, patient: StoredPatient
) -> None:
    series_uid = patient.patient.series_uid
    with client_for(server_url, cohorts.alpha_member) as http:
        for extension in (".nii.gz", ".dcm"):
            since = _log_size(platform)
            reply = http.post(
                "/infer/everything_mr",
                params={"image": series_uid},
                data={"params": json.dumps({"result_extension": extension})},
            )
            assert reply.status_code == 200, reply.text
            calls = _calls_of(platform, "POST", "/infer/everything_mr", since)
            print(extension, sum(calls.values()), dict(calls))
            # one lookup of the series (its study and series read once), and the SEG stored once
            assert calls["POST /tools/lookup"] == 1, calls
            assert calls["GET /series/*"] == 1 and calls["GET /studies/*"] == 1, calls
            assert calls["POST /dicom-web/studies"] == 1, calls
            # the series is fetched once, for its first decode (then cached); the SEG just stored is answered as
            # encoded, never read back from Orthanc
            assert calls["GET /dicom-web/studies/*/series/*"] == (1 if extension == ".nii.gz" else 0), calls
            assert sum(calls.values()) == (5 if extension == ".nii.gz" else 4), calls


def test_a_members_radiomics_extraction_resolves_its_series_once(
    platform: Settings, server_url: str, admin: Account, cohorts: Cohorts, patient: StoredPatient, tmp_path: Path
) -> None:
    truth = np.asanyarray(nib.load(str(patient.patient.truth["tumour"])).dataobj) > 0
    path = tmp_path / "label.nii.gz"
    nib.save(nib.Nifti1Image(truth.astype(np.uint8), patient.patient.affine), str(path))
    with client_for(server_url, cohorts.alpha_member) as http:
        reply = http.put(
            "/datastore/label",
            params={"image": patient.patient.series_uid, "tag": "final"},
            files={"label": (path.name, path.read_bytes())},
            data={"params": json.dumps({"label_info": [{"name": "tumour", "idx": 1}]})},
        )
        assert reply.status_code == 200, reply.text
        seg_uid = reply.json()["label"]
        since = _log_size(platform)
        reply = http.post(
            "/api/radiomics",
            json={"series_uid": patient.patient.series_uid, "seg_uid": seg_uid, "preset": "ibsi-original"},
        )
        assert reply.status_code == 201, reply.text
    calls = _calls_of(platform, "POST", "/api/radiomics", since)
    print("radiomics", sum(calls.values()), dict(calls))
    # the image series looked up once (its volume comes from the cache); the SEG, immutable, fetched by its
    # instance UID to be decoded, with no lookup
    assert calls["POST /tools/lookup"] == 1, calls
    assert calls["GET /series/*"] == 1 and calls["GET /studies/*"] == 1, calls
    assert calls["GET /dicom-web/studies/*/series/*/instances/*"] == 1, calls
    assert sum(calls.values()) == 4, calls
