"""A site's own Dask cluster: a `dask scheduler` and a `dask worker` started as separate processes on loopback over
TLS (as a site would run them), the server pointed at it with AWESOMME_DASK_SCHEDULER: a batch runs through them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from distributed.security import Security

from awesomme.core.config import Settings
from awesomme.orthanc.client import OrthancClient
from awesomme.runtime.platform import start_server, stop_server
from tests.integration.conftest import (
    Account,
    attach_to_cohort,
    bind_model,
    client_for,
    create_account,
    free_port,
    store_patient,
)

pytestmark = pytest.mark.timeout(300)
DASK = str(Path(sys.executable).parent / "dask")


def _pem_files(directory: Path) -> dict[str, str]:
    """A CA, certificate and key for scheduler, worker and client (one self-signed pair, as Dask's own tests do)."""
    security = Security.temporary()
    files = {"ca": security.tls_ca_file, "cert": security.tls_client_cert, "key": security.tls_client_key}
    paths = {}
    for name, text in files.items():
        path = directory / f"{name}.pem"
        path.write_text(str(text))
        path.chmod(0o600)
        paths[name] = str(path)
    return paths


@pytest.fixture()
def site_cluster(platform: Settings, tmp_path: Path) -> Iterator[str]:
    pem = _pem_files(tmp_path)
    tls = ["--tls-ca-file", pem["ca"], "--tls-cert", pem["cert"], "--tls-key", pem["key"]]
    address = f"tls://127.0.0.1:{free_port()}"  # tls:// in the address: the scheduler listens over TLS
    log = (tmp_path / "dask.log").open("w")
    port = address.rsplit(":", 1)[1]
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", port, "--protocol", "tls", "--no-dashboard", *tls],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [DASK, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1", "--no-dashboard", *tls],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # the platform's settings and var/secrets.env: no credential
    )
    pointed = {
        "AWESOMME_DASK_SCHEDULER": address,
        "AWESOMME_DASK_TLS_CA": pem["ca"],
        "AWESOMME_DASK_TLS_CERT": pem["cert"],
        "AWESOMME_DASK_TLS_KEY": pem["key"],
    }
    os.environ.update(pointed)
    try:
        stop_server(platform)
        start_server(platform)
        yield address
    finally:
        for name in pointed:
            os.environ.pop(name, None)
        stop_server(platform)
        start_server(platform)  # the other modules' server: its own LocalCluster again
        for process in (worker, scheduler):
            process.terminate()
        for process in (worker, scheduler):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def test_a_batch_runs_on_a_site_scheduler_and_worker_started_as_processes(
    platform: Settings,
    server_url: str,
    admin: Account,
    orthanc: OrthancClient,
    tmp_path: Path,
    site_cluster: str,
) -> None:
    headers = admin.headers(server_url)
    reply = httpx.post(f"{server_url}/api/cohorts", json={"name": "delta", "description": "site"}, headers=headers)
    assert reply.status_code == 201, reply.text
    cohort = reply.json()["id"]
    owner = create_account("delta.admin")
    url = f"{server_url}/api/cohorts/{cohort}/members/{owner.username}"
    assert httpx.put(url, json={"role": "admin"}, headers=headers).status_code == 200
    patient = store_patient(orthanc, "osteosarcoma-mr", 2601, tmp_path / "mr")
    attach_to_cohort(server_url, admin, cohort, studies=[patient.patient.study_uid])
    bind_model(server_url, admin, "everything_mr", ["delta"])
    with client_for(server_url, owner) as client:
        body = {"cohort": cohort, "kind": "segmentation", "model": "everything_mr", "tag": "site"}
        created = client.post("/api/batches", json=body)
        assert created.status_code == 202, created.text
        deadline = time.monotonic() + 240
        while (status := client.get(f"/api/batches/{created.json()['id']}").json())["status"] != "done":
            assert time.monotonic() < deadline, status
            time.sleep(1)
        (item,) = client.get(f"/api/batches/{status['id']}/items").json()
    assert status["counts"]["done"] == 1, item
    hits = orthanc.dicomweb.search_for_series(patient.patient.study_uid, search_filters={"Modality": "SEG"})
    assert len(hits) == 1
    log = (platform.var_dir / "log" / "server.log").read_text()
    assert f"connected to the Dask scheduler {site_cluster}" in log
