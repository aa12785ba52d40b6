"""The hospital PACS on the real server and Orthanc, with dcmtk's ``dcmqrscp`` as the peer, and a second Orthanc
with its DICOM port (each on a free loopback port: they listen on every interface of the host): C-ECHO, C-FIND with
only the keys we allow, C-GET and C-MOVE of a series de-identified on arrival (no planted identity in Orthanc), the
identity map once, the cap, unknown, dead and dying peers."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from awesomme.orthanc.client import OrthancClient
from awesomme.phantoms import generate_patient
from tests.integration.conftest import Account, Cohorts, client_for, create_account, free_port

pytestmark = pytest.mark.skipif(shutil.which("dcmqrscp") is None, reason="dcmtk's dcmqrscp is not installed")

CANARY_ID = "PACS-CANARY-0815"
CANARY_NAME = "Canary^Paula"
CT_SMALL_STUDY = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"  # pydicom's CT_small.dcm


def _planted(tmp_path: Path) -> list[Path]:
    """pydicom's CT test file, a 4-slice phantom CT series and pydicom's MR test file, each with a planted
    identity."""
    sources = [Path(str(get_testdata_file("CT_small.dcm")))]
    sources += generate_patient("chest-ct", 4343, tmp_path / "phantom", shape=(4, 32, 32)).dicom_files
    sources += [Path(str(get_testdata_file("MR_small.dcm")))]
    out = []
    for index, source in enumerate(sources):
        ds = pydicom.dcmread(source)
        ds.PatientID, ds.PatientName = CANARY_ID, CANARY_NAME
        path = tmp_path / f"planted-{index}.dcm"
        ds.save_as(path)
        out.append(path)
    return out


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return _planted(tmp_path_factory.mktemp("planted"))


@pytest.fixture(scope="module")
def move_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def peer_port(tmp_path_factory: pytest.TempPathFactory, planted: list[Path], move_port: int):
    """dcmqrscp as the PACS (called AE ``PACS``), loaded with the planted files through its own C-STORE SCP; it
    knows our AE title (C-MOVE's destination) at 127.0.0.1:``move_port``."""
    root = tmp_path_factory.mktemp("pacs")
    (root / "db").mkdir()
    port = free_port()
    (root / "dcmqrscp.cfg").write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 8\n"
        f"HostTable BEGIN\nawesomme = (AWESOMME, 127.0.0.1, {move_port})\nHostTable END\n"
        "VendorTable BEGIN\nVendorTable END\n"
        f"AETable BEGIN\nPACS {root / 'db'} RW (200, 1024mb) ANY\nAETable END\n"
    )
    process = subprocess.Popen(["dcmqrscp", "-c", str(root / "dcmqrscp.cfg"), str(port)], stderr=subprocess.DEVNULL)
    files = planted
    for _ in range(50):
        stored = subprocess.run(
            ["storescu", "-aec", "PACS", "127.0.0.1", str(port), *map(str, files)], capture_output=True, check=False
        )
        if stored.returncode == 0:
            break
        time.sleep(0.1)
    assert stored.returncode == 0, stored.stderr
    yield port
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="module")
def pacs(
    server_url: str, admin: Account, cohorts: Cohorts, peer_port: int, dying_port: int, move_port: int
) -> dict[str, Any]:
    """A de-identifying cohort with an admin of its own; peers: ``hospital`` (allowed for it, cap 4 instances),
    ``elsewhere`` (same PACS, allowed for beta only), ``dead`` (nothing listens), ``stranger`` (wrong AE title) and
    ``dying`` (goes away in the middle of a C-GET); ``mover`` is the PACS by C-MOVE."""
    headers = admin.headers(server_url)
    reply = httpx.post(
        f"{server_url}/api/cohorts", json={"name": "pacs-intake", "description": "pacs"}, headers=headers
    )
    assert reply.status_code == 201, reply.text
    cohort_id = reply.json()["id"]
    pacs_admin = create_account("pacs.admin")  # an admin of its own: other tests count the shared accounts' cohorts
    url = f"{server_url}/api/cohorts/{cohort_id}/members/{pacs_admin.username}"
    assert httpx.put(url, json={"role": "admin"}, headers=headers).status_code == 200
    base = {"host": "127.0.0.1", "retrieve": "get", "max_studies": 1, "max_instances": 4}
    peers = {
        "hospital": {"ae_title": "PACS", "port": peer_port, "cohorts": ["pacs-intake"]},
        "elsewhere": {"ae_title": "PACS", "port": peer_port, "cohorts": ["beta"]},
        "dead": {"ae_title": "PACS", "port": free_port(), "cohorts": ["pacs-intake"]},
        "stranger": {"ae_title": "NOBODY", "port": peer_port, "cohorts": ["pacs-intake"]},
        "dying": {"ae_title": "DYING", "port": dying_port, "cohorts": ["pacs-intake"]},
        "mover": {
            "ae_title": "PACS",
            "port": peer_port,
            "cohorts": ["pacs-intake"],
            "retrieve": "move",
            "move_port": move_port,
        },
    }
    for name, spec in peers.items():
        reply = httpx.post(f"{server_url}/api/pacs/peers", json={"name": name, **base, **spec}, headers=headers)
        assert reply.status_code == 201, reply.text
    return {"cohort": cohort_id, "admin": pacs_admin}


@pytest.fixture(scope="module")
def dying_port(planted: list[Path]):
    """A pynetdicom peer that answers C-FIND for the phantom series, then sends one instance of a C-GET and aborts."""
    datasets = [pydicom.dcmread(path) for path in planted[1:5]]

    def on_find(event: evt.Event):
        level = event.identifier.QueryRetrieveLevel
        for ds in datasets[:1] if level == "SERIES" else datasets:
            match = Dataset()
            match.QueryRetrieveLevel = level
            match.StudyInstanceUID, match.SeriesInstanceUID = ds.StudyInstanceUID, ds.SeriesInstanceUID
            if level == "IMAGE":
                match.SOPInstanceUID = ds.SOPInstanceUID
            yield 0xFF00, match

    def on_get(event: evt.Event):
        yield len(datasets)
        yield 0xFF00, datasets[0]
        event.assoc.abort()

    ae = AE(ae_title="DYING")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_supported_context(CTImageStorage, scu_role=True, scp_role=True)
    port = free_port()
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_FIND, on_find), (evt.EVT_C_GET, on_get)]
    )
    assert server is not None
    yield port
    server.shutdown()


def _studies(http: httpx.Client) -> list[dict[str, Any]]:
    reply = http.post("/api/pacs/hospital/query", json={"patient_id": CANARY_ID})
    assert reply.status_code == 200, reply.text
    return list(reply.json()["studies"])


def _series_of(http: httpx.Client, study_uid: str) -> list[dict[str, Any]]:
    reply = http.post("/api/pacs/hospital/query", json={"study_uid": study_uid})
    assert reply.status_code == 200, reply.text
    return list(reply.json()["series"])


def _instances(orthanc: OrthancClient) -> int:
    return int(orthanc.statistics()["CountInstances"])


def test_echo_answers_and_a_dead_or_refusing_peer_is_a_502(pacs, server_url, admin):
    with client_for(server_url, admin) as http:
        reply = http.post("/api/pacs/peers/hospital/echo")
        assert reply.status_code == 200 and reply.json()["status"] == "success", reply.text
        dead = http.post("/api/pacs/peers/dead/echo")
        assert dead.status_code == 502 and "not reachable" in dead.json()["detail"]
        refused = http.post("/api/pacs/peers/stranger/echo")
        assert refused.status_code == 502 and "refused" in refused.json()["detail"]
        listed = {peer["name"] for peer in http.get("/api/pacs/peers").json()}
        assert {"hospital", "elsewhere", "dead", "stranger"} <= listed


def test_query_finds_studies_then_series_and_refuses_keys_we_do_not_allow(pacs, server_url):
    with client_for(server_url, pacs["admin"]) as http:
        studies = _studies(http)
        assert len(studies) == 3 and {study["patient_id"] for study in studies} == {CANARY_ID}
        phantom = next(study for study in studies if study["study_uid"] != CT_SMALL_STUDY)
        series = _series_of(http, phantom["study_uid"])
        assert len(series) == 1 and series[0]["modality"] == "CT"
        for body in (
            {"patient_id": CANARY_ID, "patient_name": "Canary*"},  # a key we never send
            {"patient_id": "PACS-*"},  # a wildcard
            {"patient_id": CANARY_ID, "accession_number": "A1"},  # two patients' keys at once
            {},
        ):
            reply = http.post("/api/pacs/hospital/query", json=body)
            assert reply.status_code == 422, (body, reply.text)


def test_an_unknown_peer_and_a_peer_of_another_cohort_read_as_unknown(pacs, server_url, cohorts):
    with client_for(server_url, pacs["admin"]) as http:
        for name in ("nope", "elsewhere"):
            reply = http.post(f"/api/pacs/{name}/query", json={"patient_id": CANARY_ID})
            assert reply.status_code == 404, reply.text
            body = {"cohort": "pacs-intake", "series_uids": ["1.2.3"]}
            assert http.post(f"/api/pacs/{name}/retrieve", json=body).status_code == 404
    with client_for(server_url, cohorts.alpha_member) as http:
        assert http.post("/api/pacs/hospital/query", json={"patient_id": CANARY_ID}).status_code == 403


def _finished(http: httpx.Client, job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        report = http.get(f"/api/imports/{job_id}").json()
        if report["status"] != "running":
            return dict(report)
        time.sleep(0.2)
    raise AssertionError(f"import {job_id} still running")


def test_a_retrieved_series_lands_de_identified_and_its_map_is_given_once(pacs, server_url, orthanc, admin):
    with client_for(server_url, pacs["admin"]) as http:
        studies = _studies(http)
        phantom = next(study for study in studies if study["study_uid"] != CT_SMALL_STUDY)
        [series] = _series_of(http, phantom["study_uid"])
        before = _instances(orthanc)
        body = {"cohort": "pacs-intake", "series_uids": [series["series_uid"]], "pseudonym": "PSEUDO-7"}
        reply = http.post("/api/pacs/hospital/retrieve", json=body)
        assert reply.status_code == 202, reply.text
        report = _finished(http, reply.json()["id"])
        assert report["status"] == "done" and report["kind"] == "pacs", report
        [stored] = [item for item in report["items"] if item.get("series_uid")]
        assert stored["status"] == "stored" and stored["instances"] == 4
        assert _instances(orthanc) - before == 4
        assert stored["series_uid"] != series["series_uid"]
        for dataset in orthanc.retrieve_series(stored["study_uid"], stored["series_uid"]):
            raw = io.BytesIO()
            dataset.save_as(raw)
            assert CANARY_ID.encode() not in raw.getvalue() and b"Canary" not in raw.getvalue()
            assert dataset.PatientIdentityRemoved == "YES" and dataset.PatientID == "PSEUDO-7"
        mapping = http.get(f"/api/imports/{report['id']}/mapping.csv")
        assert mapping.status_code == 200 and CANARY_ID in mapping.text and series["series_uid"] in mapping.text
        assert http.get(f"/api/imports/{report['id']}/mapping.csv").status_code == 410
    with client_for(server_url, admin) as http:
        events = http.get("/api/audit", params={"limit": 1000}).json()
    pacs_events = [event for event in events if event["action"].startswith("pacs.")]
    assert {"pacs.query", "pacs.retrieve"} <= {event["action"] for event in pacs_events}
    assert CANARY_ID not in str(events) and "Canary" not in str(events)


def test_beyond_the_cap_is_a_422_and_a_dead_peer_a_502_with_nothing_stored(pacs, server_url, orthanc):
    with client_for(server_url, pacs["admin"]) as http:
        studies = _studies(http)
        every_series = [entry["series_uid"] for study in studies for entry in _series_of(http, study["study_uid"])]
        jobs = len(http.get("/api/imports").json())
        before = _instances(orthanc)
        too_many = http.post("/api/pacs/hospital/retrieve", json={"cohort": "pacs-intake", "series_uids": every_series})
        assert too_many.status_code == 422 and "1 one request may bring" in too_many.json()["detail"]
        dead = http.post("/api/pacs/dead/retrieve", json={"cohort": "pacs-intake", "series_uids": every_series[:1]})
        assert dead.status_code == 502, dead.text
        assert len(http.get("/api/imports").json()) == jobs and _instances(orthanc) == before


def test_a_peer_that_dies_mid_transfer_fails_the_job_and_leaves_nothing_stored(pacs, server_url, orthanc, planted):
    series_uid = str(pydicom.dcmread(planted[1]).SeriesInstanceUID)
    with client_for(server_url, pacs["admin"]) as http:
        before = _instances(orthanc)
        reply = http.post("/api/pacs/dying/retrieve", json={"cohort": "pacs-intake", "series_uids": [series_uid]})
        assert reply.status_code == 202, reply.text
        report = _finished(http, reply.json()["id"])
        assert report["status"] == "failed" and "went away" in report["error"], report
        assert report["mapping"] == "none" and _instances(orthanc) == before


def test_the_cli_queries_and_retrieves_with_a_personal_token(pacs, server_url, tmp_path: Path):
    with client_for(server_url, pacs["admin"]) as http:
        reply = http.post("/api/users/me/tokens", json={"name": "cli pacs", "expires_in_days": 1})
        assert reply.status_code == 201, reply.text
        env = {**os.environ, "AWESOMME_TOKEN": reply.json()["token"]}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "awesomme.cli", "pacs", *args, "--server", server_url]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)

    query = cli("query", "hospital", "--patient-id", CANARY_ID)
    assert query.returncode == 0, query.stdout + query.stderr
    [study] = [entry for entry in json.loads(query.stdout)["studies"] if entry["study_uid"] == CT_SMALL_STUDY]
    series = json.loads(cli("query", "hospital", "--study-uid", study["study_uid"]).stdout)["series"]
    mapping = tmp_path / "map.csv"
    done = cli("retrieve", "hospital", "--cohort", "pacs-intake", "--series", series[0]["series_uid"],
               "--mapping", str(mapping))  # fmt: skip
    assert done.returncode == 0 and "stored" in done.stdout, done.stdout + done.stderr
    assert mapping.stat().st_mode & 0o077 == 0 and CANARY_ID in mapping.read_text()


def test_c_move_lands_through_the_jobs_own_storage_scp_de_identified(pacs, server_url, orthanc, planted, move_port):
    mr = pydicom.dcmread(planted[-1])
    with client_for(server_url, pacs["admin"]) as http:
        before = _instances(orthanc)
        body = {"cohort": "pacs-intake", "series_uids": [str(mr.SeriesInstanceUID)]}
        reply = http.post("/api/pacs/mover/retrieve", json=body)
        assert reply.status_code == 202, reply.text
        report = _finished(http, reply.json()["id"])
        assert report["status"] == "done", report
        [stored] = [item for item in report["items"] if item.get("series_uid")]
        assert stored["status"] == "stored" and _instances(orthanc) - before == 1
        [dataset] = orthanc.retrieve_series(stored["study_uid"], stored["series_uid"])
        raw = io.BytesIO()
        dataset.save_as(raw)
        assert CANARY_ID.encode() not in raw.getvalue() and b"Canary" not in raw.getvalue()
    with socket.socket() as probe:  # the storage SCP is closed again once the job ends
        assert probe.connect_ex(("127.0.0.1", move_port)) != 0


@pytest.fixture(scope="module")
def hospital_orthanc(tmp_path_factory: pytest.TempPathFactory, server_url: str, admin: Account, pacs):
    """A second Orthanc as the PACS (AE ``HOSPITAL``): it knows our AE title and lets it echo, find and get only;
    loaded through its REST API with a 2-slice phantom series carrying the planted identity."""
    root = tmp_path_factory.mktemp("hospital")
    http_port, dicom_port = free_port(), free_port()
    permissions = {"AllowEcho": True, "AllowFind": True, "AllowGet": True, "AllowMove": False, "AllowStore": False}
    config = {
        "Name": "hospital", "HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": "HOSPITAL",
        "StorageDirectory": str(root / "db"), "IndexDirectory": str(root / "db"), "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "DicomCheckCalledAet": True, "DicomServerEnabled": True,
        "DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False, "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowGet": False, "DicomAlwaysAllowMove": False, "Plugins": [],
        "DicomModalities": {"awesomme": {"AET": "AWESOMME", "Host": "127.0.0.1", "Port": 1, **permissions}},
    }  # fmt: skip
    (root / "orthanc.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        ["/usr/sbin/Orthanc", str(root / "orthanc.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    rest = f"http://127.0.0.1:{http_port}"
    for _ in range(100):
        try:
            if httpx.get(f"{rest}/system", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    series_uid = ""
    for path in generate_patient("chest-ct", 4545, root / "phantom", shape=(2, 16, 16)).dicom_files:
        ds = pydicom.dcmread(path)
        ds.PatientID, ds.PatientName = CANARY_ID, CANARY_NAME
        buffer = io.BytesIO()
        ds.save_as(buffer)
        assert httpx.post(f"{rest}/instances", content=buffer.getvalue(), timeout=10).status_code == 200
        series_uid = str(ds.SeriesInstanceUID)
    spec = {"name": "orthanc", "ae_title": "HOSPITAL", "host": "127.0.0.1", "port": dicom_port,
            "cohorts": ["pacs-intake"]}  # fmt: skip
    reply = httpx.post(f"{server_url}/api/pacs/peers", json=spec, headers=admin.headers(server_url))
    assert reply.status_code == 201, reply.text
    yield series_uid
    process.terminate()
    process.wait(10)


def test_a_second_orthanc_as_the_pacs_echoes_answers_counts_and_gives_a_series(
    hospital_orthanc, pacs, server_url, admin, orthanc
):
    with client_for(server_url, admin) as http:
        assert http.post("/api/pacs/peers/orthanc/echo").status_code == 200
    with client_for(server_url, pacs["admin"]) as http:
        reply = http.post("/api/pacs/orthanc/query", json={"patient_id": CANARY_ID, "modality": "CT"})
        assert reply.status_code == 200, reply.text
        [study] = reply.json()["studies"]
        assert study["instances"] == 2 and study["series"] == 1
        [series] = http.post("/api/pacs/orthanc/query", json={"study_uid": study["study_uid"]}).json()["series"]
        assert series["series_uid"] == hospital_orthanc and series["instances"] == 2
        before = _instances(orthanc)
        body = {"cohort": "pacs-intake", "series_uids": [hospital_orthanc]}
        report = _finished(http, http.post("/api/pacs/orthanc/retrieve", json=body).json()["id"])
        assert report["status"] == "done" and _instances(orthanc) - before == 2, report
        [stored] = [item for item in report["items"] if item.get("series_uid")]
        for dataset in orthanc.retrieve_series(stored["study_uid"], stored["series_uid"]):
            raw = io.BytesIO()
            dataset.save_as(raw)
            assert CANARY_ID.encode() not in raw.getvalue() and b"Canary" not in raw.getvalue()
