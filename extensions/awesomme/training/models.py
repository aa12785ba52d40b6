"""The three demo models: their YAML (network, inference, transforms) and how each is trained."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from awesomme.inference.config import SegmentationModelConfig
from awesomme.training.data import NegativeMix

__all__ = ["MODELS", "GpuRecipe", "ModelSpec", "base_config"]

PLACEHOLDER_SHA256 = "0" * 64
CT_WINDOW = {"a_min": -1000.0, "a_max": 400.0, "b_min": 0.0, "b_max": 1.0, "clip": True}
INTENDED_USE = (
    "DEMO weights trained only on synthetic phantoms (awesomme.phantoms) to show the platform working end to end. "
    "Not validated on real patients; not for clinical use, diagnosis or treatment decisions."
)


@dataclass(frozen=True)
class GpuRecipe:
    """What changes when a model trains on a GPU (``--device cuda``): the same network, inference and sampling,
    more patients and larger batches in a shorter budget. The YAML records the recipe that was used."""

    train_seeds: range
    batch: int
    budget_s: float
    max_iterations: int
    data_workers: int = 8  # processes synthesizing the training patients


@dataclass(frozen=True)
class ModelSpec:
    """How to build, train and evaluate one model.

    ``patch`` is the training patch on the network grid: (H, W) slices for ``mode: slices``, else (D, H, W).
    """

    name: str
    kind: str  # phantom kind
    structure: str  # truth mask the model segments
    modality: str
    network: dict[str, Any]
    inference: dict[str, Any]
    pre_transforms: list[dict[str, Any]]
    post_transforms: list[dict[str, Any]]
    train_seeds: range
    patch: tuple[int, ...]
    batch: int
    positive_fraction: float
    max_iterations: int
    budget_s: float
    learning_rate: float
    torch_seed: int
    numpy_seed: int
    eval_patients: int  # held-out patients with the structure present
    region_structure: str | None = None  # where negative patches are drawn from
    bright_min: float | None = None  # raw intensity (HU) from which voxels can be hard-negative centres
    negatives: NegativeMix | None = None  # shares of negatives on bright voxels in / outside the region
    per_lesion: bool = False  # positives: every connected lesion equally likely
    threads: int = 2  # torch CPU threads for training (1 is steadier when another job shares the 2 cores)
    flip: bool = False
    version: str = "0.1.0"
    tuning: str | None = None  # how an inference setting was chosen (on validation seeds), written into the YAML
    cohorts: tuple[str, ...] = ()  # the demo cohorts it is bound to (by name)
    gpu: GpuRecipe | None = None  # how it trains on a GPU, where that differs


MODELS: dict[str, ModelSpec] = {
    "osteosarcoma_mr": ModelSpec(
        name="osteosarcoma_mr",
        kind="osteosarcoma-mr",
        structure="tumour",
        modality="MR",
        network={
            "name": "UNet",
            "args": {
                "spatial_dims": 2,
                "in_channels": 1,
                "out_channels": 2,
                "channels": [16, 32, 64, 128],
                "strides": [2, 2, 2],
                "num_res_units": 1,
            },
        },
        inference={
            "mode": "slices",
            "roi_size": [128, 128],
            "sw_batch_size": 8,
            "overlap": 0.25,
            "downsample": [1, 2, 2],
        },
        pre_transforms=[
            {
                "name": "ScaleIntensityRangePercentiles",
                "args": {"lower": 1.0, "upper": 99.0, "b_min": 0.0, "b_max": 1.0, "clip": True},
            }
        ],
        post_transforms=[{"name": "KeepLargestConnectedComponent", "args": {"applied_labels": [1]}}],
        train_seeds=range(0, 40),
        patch=(128, 128),
        batch=16,
        positive_fraction=0.6,
        max_iterations=1500,
        budget_s=600.0,
        learning_rate=2e-3,
        torch_seed=1234,
        numpy_seed=1234,
        eval_patients=8,
        flip=True,
        cohorts=("osteosarcoma",),
    ),
    "lung_volume_ct": ModelSpec(
        name="lung_volume_ct",
        kind="chest-ct",
        structure="lung",
        modality="CT",
        network={
            "name": "UNet",
            "args": {
                "spatial_dims": 3,
                "in_channels": 1,
                "out_channels": 2,
                "channels": [8, 16, 32, 64],
                "strides": [[1, 2, 2], [2, 2, 2], [2, 2, 2]],
                "num_res_units": 1,
            },
        },
        inference={
            "mode": "sliding_window",
            "roi_size": [16, 128, 128],
            "sw_batch_size": 2,
            "overlap": 0.25,
            "downsample": [1, 4, 4],
        },
        pre_transforms=[{"name": "ScaleIntensityRange", "args": dict(CT_WINDOW)}],
        post_transforms=[],
        train_seeds=range(0, 24),
        patch=(16, 128, 128),
        batch=2,
        positive_fraction=0.5,
        max_iterations=1200,
        budget_s=540.0,
        learning_rate=2e-3,
        torch_seed=2345,
        numpy_seed=2345,
        eval_patients=8,
        flip=True,
        cohorts=("lung",),
    ),
    "lung_nodule_ct": ModelSpec(
        name="lung_nodule_ct",
        kind="chest-ct",
        structure="nodule",
        modality="CT",
        network={
            "name": "UNet",
            "args": {
                "spatial_dims": 3,
                "in_channels": 1,
                "out_channels": 2,
                "channels": [16, 32, 64, 128],
                "strides": [[1, 2, 2], [2, 2, 2], [2, 2, 2]],
                "num_res_units": 1,
            },
        },
        inference={
            "mode": "sliding_window",
            "roi_size": [16, 64, 64],
            "sw_batch_size": 8,
            "overlap": 0.25,
            "downsample": [1, 2, 2],
            "threshold": 0.3,  # see ``tuning``
        },
        pre_transforms=[{"name": "ScaleIntensityRange", "args": dict(CT_WINDOW)}],
        post_transforms=[{"name": "RemoveSmallObjects", "args": {"min_size": 40}}],
        train_seeds=range(0, 45),
        patch=(16, 64, 64),
        batch=4,
        positive_fraction=0.6,
        max_iterations=8000,  # the time budget is what stops it
        budget_s=1680.0,  # 28 minutes, data preparation included
        learning_rate=2e-3,
        torch_seed=3456,
        numpy_seed=3456,
        eval_patients=12,
        region_structure="lung",
        bright_min=-300.0,  # lung voxels this bright that are not nodule: vessels, the look-alikes
        negatives=NegativeMix(hard=0.35, anywhere=0.1),
        per_lesion=True,
        tuning=(
            "threshold 0.3 chosen on validation seeds 40000-40014 (14 nodules >= 8 mm), the most Dice with at most "
            "2 false positives per patient (fewer false positives on a tie): Dice >= 8 mm 0.894 / 0.897 / 0.898 / "
            "0.898 and false positives per patient 0.07 / 0.07 / 0.13 / 0.20 at thresholds 0.5 / 0.4 / 0.3 / 0.2"
        ),
        cohorts=("lung",),
        flip=True,
        gpu=GpuRecipe(train_seeds=range(0, 160), batch=32, budget_s=300.0, max_iterations=40000, data_workers=14),
    ),
}


def base_config(spec: ModelSpec, sha256: str = PLACEHOLDER_SHA256, **overrides: Any) -> SegmentationModelConfig:
    """The model's config before training figures are known (``training``/``validation`` can be overridden)."""
    fields: dict[str, Any] = {
        "kind": "segmentation",
        "name": spec.name,
        "version": spec.version,
        "modality": spec.modality,
        "labels": {spec.structure: 1},
        "network": spec.network,
        "weights": {"file": f"{spec.name}.pt", "sha256": sha256},
        "inference": spec.inference,
        "pre_transforms": spec.pre_transforms,
        "post_transforms": spec.post_transforms,
        "cohorts": list(spec.cohorts),
        "demo_weights": True,
        "intended_use": INTENDED_USE,
        "training": {},
        "validation": {},
        "expected_runtime_s": {},
    }
    fields.update(overrides)
    return SegmentationModelConfig(**fields)
