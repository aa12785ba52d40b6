"""A tiny model config (2D UNet) written as YAML with real weights, for the loader and registry tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from awesomme.core.checksums import sha256_of
from awesomme.inference.config import SegmentationModelConfig
from awesomme.inference.network import build_network


def tiny_config(name: str = "tiny_mr", weights: str = "tiny.pt", sha256: str = "0" * 64) -> dict[str, Any]:
    return {
        "kind": "segmentation",
        "name": name,
        "version": "1.0.0",
        "modality": "MR",
        "labels": {"tumour": 1},
        "network": {
            "name": "UNet",
            "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2]},
        },
        "weights": {"file": weights, "sha256": sha256},
        "inference": {"mode": "slices", "roi_size": [32, 32]},
        "pre_transforms": [{"name": "NormalizeIntensity"}],
        "post_transforms": [{"name": "KeepLargestConnectedComponent", "args": {"applied_labels": [1]}}],
        "demo_weights": True,
        "intended_use": "tests",
        "training": {},
        "validation": {},
    }


@pytest.fixture()
def model_dir(tmp_path: Path) -> Path:
    """``tiny_mr.yaml`` with matching weights (absolute path) in a fresh directory."""
    raw = tiny_config(weights=str(tmp_path / "tiny.pt"))
    torch.manual_seed(0)
    torch.save(build_network(SegmentationModelConfig(**raw)).state_dict(), tmp_path / "tiny.pt")
    raw["weights"]["sha256"] = sha256_of(tmp_path / "tiny.pt")
    (tmp_path / "tiny_mr.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path
