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
import torch
import yaml

from awesomme.core.config import Settings, load_settings
from awesomme.inference.config import SegmentationModelConfig
from awesomme.inference.network import build_network, sha256_of, weights_path
from awesomme.orthanc.client import OrthancClient
from awesomme.phantoms import Patient, generate_patient
from awesomme.runtime.orthanc import ensure_secrets
from awesomme.runtime.platform import base_url, start_all, stop_all

# Two of the small test series (24x160x160, 16 bits: 1.2 MB each) fit, three do not: eviction must happen.
SMALL_SHAPE = (24, 160, 160)
CACHE_MAX_BYTES = 3_000_000
UPLOAD_MAX_BYTES = 8_000_000
SHIPPED_CONFIGS = Path(__file__).resolve().parents[2] / "infer_configs"
TINY_UNET = {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def platform_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    var_dir = tmp_path_factory.mktemp("var")
    configs_dir = write_test_models(tmp_path_factory.mktemp("infer_configs"))
    environment = {
        "AWESOMME_INFER_CONFIGS_DIR": str(configs_dir),
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


def leftovers(settings: Settings) -> list[str]:
    """Files the server left in its temporary directory (torch's compile cache aside)."""
    return [p.name for p in (settings.var_dir / "tmp").iterdir() if p.name != "torchinductor_root"]


def write_test_models(directory: Path) -> Path:
    """The shipped models, plus two tiny fixed-output models and one with a wrong checksum.

    ``everything_mr`` labels every voxel (all weights zero, the last bias favours class 1) and ``nothing_ct``
    none: they exercise the request path whatever the shipped weights can do.
    """
    for shipped in sorted(SHIPPED_CONFIGS.glob("*.yaml")):
        raw = yaml.safe_load(shipped.read_text())
        if isinstance(raw, dict) and raw.get("kind") == "segmentation":
            raw["weights"]["file"] = str(weights_path(SegmentationModelConfig(**raw)))
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
