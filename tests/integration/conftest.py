"""A real Orthanc and the real platform server, on free loopback ports with their own storage, per test session."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pydicom
import pytest

from awesomme.core.config import Settings, load_settings
from awesomme.orthanc.client import OrthancClient
from awesomme.phantoms import Patient, generate_patient
from awesomme.runtime.orthanc import ensure_secrets
from awesomme.runtime.platform import base_url, start_all, stop_all

# Two of the small test series (24x160x160, 16 bits: 1.2 MB each) fit, three do not: eviction must happen.
SMALL_SHAPE = (24, 160, 160)
CACHE_MAX_BYTES = 3_000_000
UPLOAD_MAX_BYTES = 8_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def platform_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    var_dir = tmp_path_factory.mktemp("var")
    environment = {
        "AWESOMME_VAR_DIR": str(var_dir),
        "AWESOMME_PORT": str(free_port()),
        "AWESOMME_ORTHANC_URL": f"http://127.0.0.1:{free_port()}",
        "AWESOMME_CACHE_MAX_BYTES": str(CACHE_MAX_BYTES),
        "AWESOMME_UPLOAD_MAX_BYTES": str(UPLOAD_MAX_BYTES),
    }
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    ensure_secrets(load_settings())
    settings = load_settings()
    try:
        yield settings
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def platform(platform_settings: Settings) -> Iterator[Settings]:
    """Orthanc, the migrated database and the server, started as `make run` starts them."""
    try:
        start_all(platform_settings)
        yield platform_settings
    finally:
        stop_all(platform_settings)


@pytest.fixture(scope="session")
def server_url(platform: Settings) -> str:
    return base_url(platform)


@pytest.fixture()
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=120) as client:
        yield client


@pytest.fixture(scope="session")
def orthanc(platform: Settings) -> OrthancClient:
    return OrthancClient(platform)


@pytest.fixture(scope="session")
def var_dir(platform: Settings) -> Path:
    return platform.var_dir


@dataclass(frozen=True)
class StoredPatient:
    patient: Patient
    datasets: list[pydicom.Dataset]


def store_patient(orthanc: OrthancClient, kind: str, seed: int, out: Path, shape=SMALL_SHAPE) -> StoredPatient:
    patient = generate_patient(kind, seed, out, shape=shape)
    datasets = [pydicom.dcmread(path) for path in patient.dicom_files]
    orthanc.store(datasets)
    return StoredPatient(patient, datasets)


@pytest.fixture(scope="session")
def mr_patient(orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory) -> StoredPatient:
    return store_patient(orthanc, "osteosarcoma-mr", 101, tmp_path_factory.mktemp("mr"))


@pytest.fixture(scope="session")
def ct_patient(orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory) -> StoredPatient:
    return store_patient(orthanc, "chest-ct", 102, tmp_path_factory.mktemp("ct"))
