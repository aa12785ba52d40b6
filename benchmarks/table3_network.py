"""The network and settings Table 3 is measured with, shared by ``table3.py`` (CPU, both servers) and
``table3_gpu.py`` (one process on a GPU), so that both time the very same function."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from monai.networks.nets import UNet

__all__ = [
    "COHORT",
    "MODEL",
    "NETWORK",
    "OVERLAP",
    "ROI_XYZ",
    "SCALE",
    "SHAPES",
    "WEIGHT_SEED",
    "our_config",
    "parse_shape",
    "stock_network",
]

MODEL = "bench_unet"
COHORT = "table3"
SHAPES = ((16, 512, 512), (60, 352, 352), (26, 1024, 1024))
NETWORK: dict[str, Any] = {
    "spatial_dims": 3,
    "in_channels": 1,
    "out_channels": 2,
    "channels": [16, 32, 64, 128, 256],
    "strides": [2, 2, 2, 2],
    "num_res_units": 2,
}
ROI_XYZ = (256, 256, 16)  # MONAI loads NIfTI as (x, y, z)
OVERLAP = 0.25
SCALE = {"a_min": -1000.0, "a_max": 1000.0, "b_min": 0.0, "b_max": 1.0, "clip": True}
WEIGHT_SEED = 20240611


def stock_network() -> torch.nn.Module:
    """The benchmark's network with its fixed random weights."""
    torch.manual_seed(WEIGHT_SEED)
    return UNet(**NETWORK).eval()


def our_config(weights: Path, sw_batch_size: int, axes: str = "xyz") -> dict[str, Any]:
    """Our model YAML (as a dict) serving ``weights``."""
    from awesomme.core.checksums import sha256_of

    roi = ROI_XYZ if axes == "xyz" else ROI_XYZ[::-1]
    return {
        "kind": "segmentation",
        "name": MODEL,
        "version": "1.0.0",
        "modality": "CT",
        "labels": {"nodule": 1},
        "network": {"name": "UNet", "args": NETWORK},
        "weights": {"file": str(weights), "sha256": sha256_of(weights)},
        "inference": {
            "mode": "sliding_window",
            "axes": axes,
            "roi_size": list(roi),
            "sw_batch_size": sw_batch_size,
            "overlap": OVERLAP,
        },
        "pre_transforms": [{"name": "ScaleIntensityRange", "args": SCALE}],
        "cohorts": [COHORT],
        "demo_weights": True,
        "intended_use": "benchmark only: random weights",
        "training": {"data": "none: fixed random weights"},
        "validation": {},
    }


def parse_shape(text: str) -> tuple[int, int, int]:
    """``SLICESxROWSxCOLS`` -> (slices, rows, columns)."""
    slices, rows, columns = (int(v) for v in text.lower().split("x"))
    return slices, rows, columns
