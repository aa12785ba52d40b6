"""AWESOMME_DEVICE: where the served networks run, resolved on this machine, never a silent fall back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from awesomme.core.config import Settings
from awesomme.inference.config import SegmentationModelConfig
from awesomme.inference.device import DeviceUnavailable, resolve_device
from awesomme.inference.network import build_network
from awesomme.inference.predict import predict

TINY = {
    "kind": "segmentation",
    "name": "tiny",
    "version": "0.0.1",
    "modality": "MR",
    "labels": {"tumour": 1},
    "network": {
        "name": "UNet",
        "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2]},
    },
    "weights": {"file": "unused.pt", "sha256": "0" * 64},
    "inference": {"mode": "slices", "roi_size": [16, 16], "sw_batch_size": 2},
    "pre_transforms": [{"name": "NormalizeIntensity"}],
    "demo_weights": True,
    "intended_use": "tests only",
    "training": {"data": "none"},
    "validation": {},
}


def test_auto_is_cuda_where_there_is_one_else_the_cpu() -> None:
    expected = "cuda:0" if torch.cuda.is_available() else "cpu"
    assert str(resolve_device("auto")) == expected
    assert str(resolve_device("cpu")) == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_a_cuda_device_the_machine_lacks_is_an_error_naming_the_setting() -> None:
    for setting in ("cuda", "cuda:1"):
        with pytest.raises(DeviceUnavailable, match=f"AWESOMME_DEVICE={setting}"):
            resolve_device(setting)


def test_the_setting_accepts_only_device_names() -> None:
    assert Settings(device="cuda:1").device == "cuda:1"
    with pytest.raises(ValueError):
        Settings(device="mps; rm -rf")


def test_a_prediction_comes_back_to_the_cpu_from_the_networks_device() -> None:
    config = SegmentationModelConfig(**TINY)
    network = build_network(config).to(resolve_device("auto")).eval()
    volume = np.random.default_rng(0).normal(size=(3, 20, 20)).astype(np.float32)
    prediction = predict(network, volume, config)
    assert isinstance(prediction.label_map, np.ndarray) and prediction.label_map.shape == (3, 20, 20)
    cpu = predict(network.cpu(), volume, config).label_map > 0
    served = prediction.label_map > 0
    both, total = int((cpu & served).sum()), int(cpu.sum() + served.sum())
    assert (2 * both / total if total else 1.0) >= 0.99  # the same mask wherever it ran (identical on a CPU)
