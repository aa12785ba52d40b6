"""The batch runner's Dask cluster: worker processes on loopback over TLS with in-memory certificates, so that a
client without them (another local account) cannot submit work; a plain tcp:// scheduler is refused at start-up."""

from __future__ import annotations

import operator

import httpx
import pytest
from distributed import Client
from distributed.security import Security
from pydantic import ValidationError

from awesomme.core.config import Settings
from awesomme.services.batch_runner import _Cluster


def _http_ports(cluster: _Cluster) -> list[int]:
    scheduler = cluster.cluster.scheduler
    ports = [int(sock.getsockname()[1]) for sock in scheduler.http_server._sockets.values()]
    workers = cluster.client.run(lambda dask_worker: dask_worker.http_server.port)
    return ports + [int(port) for port in workers.values()]


def test_a_plain_tcp_scheduler_is_refused_when_the_settings_load() -> None:
    with pytest.raises(ValidationError, match="tls://"):
        Settings(dask_scheduler="tcp://127.0.0.1:8786")
    assert Settings(dask_scheduler="tls://127.0.0.1:8786").dask_scheduler.startswith("tls://")


@pytest.mark.timeout(120)
def test_the_local_cluster_listens_on_loopback_over_tls_and_refuses_clients_without_its_certificates() -> None:
    cluster = _Cluster(Settings(dask_workers=1))
    try:
        address = cluster.cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        for port in _http_ports(cluster):  # Dask's HTTP listeners: loopback, nothing served (no dashboard, no state)
            for path in ("/json/index.html", "/info/main/workers.html", "/status", "/metrics"):
                assert httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5).status_code == 404, (port, path)
        assert cluster.workers == 1
        assert cluster.client.submit(operator.add, 2, 3).result(timeout=60) == 5
        for stranger in (Security(), Security.temporary()):  # no certificate; certificates of another CA
            with pytest.raises((OSError, TypeError, TimeoutError)):
                Client(address, security=stranger, timeout=5).close()
    finally:
        cluster.close()
