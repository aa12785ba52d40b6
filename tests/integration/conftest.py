"""A real Orthanc and the real platform server, on free loopback ports with their own storage, per test session."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
import torch
import yaml
from monailabel.client import MONAILabelClient

from awesomme.analysis.classification import artefact_path
from awesomme.analysis.classifier_config import ClassificationModelConfig
from awesomme.core.checksums import sha256_of
from awesomme.core.config import Settings, get_settings, load_settings
from awesomme.core.db import forget_engine, session_scope
from awesomme.inference.config import SegmentationModelConfig
from awesomme.inference.network import build_network, weights_path
from awesomme.orthanc.client import OrthancClient
from awesomme.phantoms import Patient, generate_patient
from awesomme.runtime.orthanc import ensure_secrets
from awesomme.runtime.platform import base_url, start_all, stop_all
from awesomme.services import identity

# Two of the small test series (24x160x160, 16 bits: 1.2 MB each) fit, three do not: eviction must happen.
SMALL_SHAPE = (24, 160, 160)
CACHE_MAX_BYTES = 3_000_000
UPLOAD_MAX_BYTES = 8_000_000
SHIPPED_CONFIGS = Path(__file__).resolve().parents[2] / "infer_configs"
TINY_UNET = {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2]}


PROXY_ADDRESS = "127.0.0.77"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def platform_settings(tmp_path_factory: pytest.TempPathFactory, platform_database_url: str) -> Iterator[Settings]:
    var_dir = tmp_path_factory.mktemp("var")
    configs_dir = write_test_models(tmp_path_factory.mktemp("infer_configs"))
    environment = {
        "AWESOMME_INFER_CONFIGS_DIR": str(configs_dir),
        "AWESOMME_VAR_DIR": str(var_dir),
        "AWESOMME_DATABASE_URL": platform_database_url,  # SQLite under var/ unless AWESOMME_TEST_DATABASE=postgresql
        "AWESOMME_PORT": str(free_port()),
        "AWESOMME_ORTHANC_URL": f"http://127.0.0.1:{free_port()}",
        "AWESOMME_CACHE_MAX_BYTES": str(CACHE_MAX_BYTES),
        "AWESOMME_UPLOAD_MAX_BYTES": str(UPLOAD_MAX_BYTES),
        # The reverse proxy of test_tls_proxy.py connects from this address: the only one whose X-Forwarded-For
        # the server believes (no other test uses it: addresses.py never makes 127.0.0.x).
        "AWESOMME_TRUSTED_PROXIES": PROXY_ADDRESS,
    }
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    ensure_secrets(load_settings())
    settings = load_settings()
    forget_engine()  # this process talks to the test platform's DB
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


@dataclass(frozen=True)
class Account:
    username: str
    password: str

    def token(self, server_url: str) -> dict[str, Any]:
        form = {"grant_type": "password", "username": self.username, "password": self.password}
        reply = httpx.post(f"{server_url}/api/auth/token", data=form, timeout=60)
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def headers(self, server_url: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(server_url)['access_token']}"}


def create_account(username: str, admin: bool = False) -> Account:
    """A user made straight in the platform DB (as `awesomme user create` does)."""
    password = f"{username}-password-123"
    with session_scope() as session:
        identity.create_user(session, get_settings(), username, password, admin=admin)
    return Account(username, password)


@pytest.fixture(scope="session")
def admin(platform: Settings) -> Account:
    """A platform admin: sees everything, also series in no cohort (what the tests store straight into Orthanc)."""
    return create_account("platform.admin", admin=True)


@dataclass(frozen=True)
class Cohorts:
    """Two cohorts and their people: ``alpha`` (an admin and a member), ``beta`` (a member); and someone in none."""

    alpha: int
    beta: int
    alpha_admin: Account
    alpha_member: Account
    beta_member: Account
    loner: Account


@pytest.fixture(scope="session")
def cohorts(server_url: str, admin: Account) -> Cohorts:
    headers = admin.headers(server_url)
    ids = {}
    for name in ("alpha", "beta"):
        # Synthetic phantoms: the test cohorts store data as sent (a new cohort de-identifies unless told).
        body = {"name": name, "description": name, "identified": True}
        reply = httpx.post(f"{server_url}/api/cohorts", json=body, headers=headers)
        assert reply.status_code == 201, reply.text
        ids[name] = reply.json()["id"]
    people = {name: create_account(name) for name in ("alpha.admin", "alpha.member", "beta.member", "lone.user")}
    for cohort, username, role in (
        ("alpha", "alpha.admin", "admin"),
        ("alpha", "alpha.member", "member"),
        ("beta", "beta.member", "member"),
    ):
        url = f"{server_url}/api/cohorts/{ids[cohort]}/members/{username}"
        reply = httpx.put(url, json={"role": role}, headers=headers)
        assert reply.status_code == 200, reply.text
    return Cohorts(
        ids["alpha"],
        ids["beta"],
        people["alpha.admin"],
        people["alpha.member"],
        people["beta.member"],
        people["lone.user"],
    )


def attach_to_cohort(server_url: str, admin: Account, cohort_id: int, *, studies=(), series=()) -> None:
    reply = httpx.post(
        f"{server_url}/api/cohorts/{cohort_id}/studies",
        json={"study_uids": list(studies), "series_uids": list(series)},
        headers=admin.headers(server_url),
    )
    assert reply.status_code == 200, reply.text


def bind_model(server_url: str, admin: Account, model: str, cohort_names: list[str]) -> None:
    """Bind ``model`` to exactly these cohorts (by name), as a platform admin does."""
    reply = httpx.put(
        f"{server_url}/api/models/{model}/cohorts", json={"cohorts": cohort_names}, headers=admin.headers(server_url)
    )
    assert reply.status_code == 200, reply.text
    assert sorted(cohort["name"] for cohort in reply.json()["cohorts"]) == sorted(cohort_names)


def client_for(server_url: str, account: Account | None) -> httpx.Client:
    headers = account.headers(server_url) if account else {}
    return httpx.Client(base_url=server_url, timeout=120, headers=headers)


def monailabel_client(server_url: str, account: Account, tmp_path: Path) -> MONAILabelClient:
    """MONAI Label's own Python client (the one 3D Slicer's module uses), logged in as ``account``."""
    client = MONAILabelClient(server_url, tmpdir=str(tmp_path))
    client.update_auth(account.token(server_url))
    return client


@pytest.fixture()
def http(server_url: str, admin: Account) -> Iterator[httpx.Client]:
    """The platform admin's client (issue 2's tests run behind login as the one who sees everything)."""
    with client_for(server_url, admin) as client:
        yield client


@pytest.fixture()
def anonymous(server_url: str) -> Iterator[httpx.Client]:
    with client_for(server_url, None) as client:
        yield client


@pytest.fixture(scope="session")
def orthanc(platform: Settings) -> OrthancClient:
    return OrthancClient(platform)


@pytest.fixture(scope="session")
def var_dir(platform: Settings) -> Path:
    return platform.var_dir


def leftovers(settings: Settings) -> list[str]:
    """Files the server left in its temporary directory (torch's compile cache aside)."""
    return [p.name for p in (settings.var_dir / "tmp").iterdir() if p.name != "torchinductor_root"]


def write_test_models(directory: Path) -> Path:
    """The shipped models (segmentation and classification), plus two tiny fixed-output models and one with a wrong
    checksum.

    ``everything_mr`` labels every voxel (all weights zero, the last bias favours class 1) and ``nothing_ct``
    none: they exercise the request path whatever the shipped weights can do.
    """
    for shipped in sorted(SHIPPED_CONFIGS.glob("*.yaml")):
        raw = yaml.safe_load(shipped.read_text())
        if isinstance(raw, dict) and raw.get("kind") == "segmentation":
            raw["weights"]["file"] = str(weights_path(SegmentationModelConfig(**raw)))
            (directory / shipped.name).write_text(yaml.safe_dump(raw))
        if isinstance(raw, dict) and raw.get("kind") == "classification":
            raw["artefact"]["file"] = str(artefact_path(ClassificationModelConfig(**raw)))
            (directory / shipped.name).write_text(yaml.safe_dump(raw))
    for name, modality, bias in (("everything_mr", "MR", (0.0, 5.0)), ("nothing_ct", "CT", (5.0, 0.0))):
        raw = {
            "kind": "segmentation",
            "name": name,
            "version": "0.0.1",
            "modality": modality,
            "labels": {"tumour" if modality == "MR" else "nodule": 1},
            "network": {"name": "UNet", "args": TINY_UNET},
            "weights": {"file": str(directory / f"{name}.pt"), "sha256": "0" * 64},
            "inference": {"mode": "slices", "roi_size": [64, 64], "sw_batch_size": 4},
            "pre_transforms": [{"name": "NormalizeIntensity"}],
            "demo_weights": True,
            "intended_use": "tests only",
            "training": {"data": "none: fixed output"},
            "validation": {},
        }
        network = build_network(SegmentationModelConfig(**raw))
        state = {key: torch.zeros_like(value) for key, value in network.state_dict().items()}
        last_bias = [key for key, value in state.items() if key.endswith("bias") and value.shape == (2,)][-1]
        state[last_bias] = torch.tensor(bias)
        torch.save(state, directory / f"{name}.pt")
        raw["weights"]["sha256"] = sha256_of(directory / f"{name}.pt")
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(raw))
        if name == "everything_mr":
            raw.update(name="broken_mr", weights={"file": raw["weights"]["file"], "sha256": "1" * 64})
            (directory / "broken_mr.yaml").write_text(yaml.safe_dump(raw))
    return directory


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
