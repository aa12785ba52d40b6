"""Phantom patients -> training arrays on the network's grid (pre-processing and downsampling as in serving)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from awesomme.inference.config import SegmentationModelConfig
from awesomme.inference.predict import downsample, preprocess
from awesomme.phantoms import EVALUATION_SEED_START, synthesize

__all__ = [
    "PatientArrays",
    "check_training_seeds",
    "downsample_mask",
    "load_patients",
    "network_input",
    "patient_arrays",
    "sample_patches",
    "sample_slices",
]

logger = logging.getLogger(__name__)


@dataclass
class PatientArrays:
    """One patient on the network's grid: ``image`` (D, H, W) float16 after pre-processing and downsampling,
    ``label`` (D, H, W) uint8 0/1, and the voxel indices of the foreground (for positive sampling)."""

    seed: int
    image: NDArray[np.float16]
    label: NDArray[np.uint8]
    foreground: NDArray[np.int32] = field(default_factory=lambda: np.zeros((0, 3), np.int32))
    region: NDArray[np.int32] = field(default_factory=lambda: np.zeros((0, 3), np.int32))


def check_training_seeds(seeds: Iterable[int]) -> list[int]:
    """The seeds as a list; refuses evaluation seeds (>= 50000)."""
    checked = [int(s) for s in seeds]
    reserved = [s for s in checked if s >= EVALUATION_SEED_START]
    if reserved:
        raise ValueError(f"seeds >= {EVALUATION_SEED_START} are reserved for evaluation: {reserved[:5]}")
    return checked


def network_input(volume: NDArray[Any], config: SegmentationModelConfig) -> torch.Tensor:
    """Exactly what :func:`awesomme.inference.predict.predict` feeds the network: (1, D, H, W) float."""
    return downsample(preprocess(volume, config), config.inference.downsample)


def downsample_mask(mask: NDArray[Any], factors: tuple[int, int, int]) -> NDArray[np.uint8]:
    """A 0/1 mask on the downsampled grid: the voxels at least half covered (same pooling as the image)."""
    if tuple(factors) == (1, 1, 1):
        return (np.asarray(mask) > 0).astype(np.uint8)
    tensor = torch.as_tensor((np.asarray(mask) > 0).astype(np.float32))[None, None]
    pooled = F.avg_pool3d(tensor, kernel_size=factors, stride=factors, ceil_mode=True)[0, 0]
    return (pooled >= 0.5).numpy().astype(np.uint8)


def patient_arrays(
    volume: NDArray[Any],
    mask: NDArray[Any],
    config: SegmentationModelConfig,
    seed: int = 0,
    region_mask: NDArray[Any] | None = None,
) -> PatientArrays:
    """Image and label of one patient on the network grid; ``region_mask`` (optional, full grid) marks where
    negative samples should come from (e.g. the lungs for nodules)."""
    factors = config.inference.downsample
    image = network_input(volume, config)[0].numpy().astype(np.float16)
    label = downsample_mask(mask, factors)
    if label.shape != image.shape:
        raise ValueError(f"label {label.shape} and image {image.shape} differ")
    foreground = np.argwhere(label > 0).astype(np.int32)
    region = np.zeros((0, 3), np.int32)
    if region_mask is not None:
        small = downsample_mask(region_mask, factors)
        region = np.argwhere(small > 0).astype(np.int32)
        region = region[:: max(1, len(region) // 20000)]  # a sparse subset is enough to draw centres from
    return PatientArrays(seed=seed, image=image, label=label, foreground=foreground, region=region)


def load_patients(
    kind: str,
    seeds: Iterable[int],
    config: SegmentationModelConfig,
    structure: str,
    region_structure: str | None = None,
) -> list[PatientArrays]:
    """Synthesize each training patient (default grid) and keep only its network-grid arrays (in memory)."""
    patients = []
    for seed in check_training_seeds(seeds):
        phantom = synthesize(kind, seed)
        region = phantom.truth[region_structure] if region_structure else None
        patients.append(patient_arrays(phantom.volume, phantom.truth[structure], config, seed, region))
        logger.debug("patient %s %s: %s", kind, seed, patients[-1].image.shape)
    return patients


def _crop(array: NDArray[Any], start: tuple[int, ...], size: tuple[int, ...]) -> NDArray[Any]:
    """``array[start:start+size]`` padded with the array's minimum (image) or 0 (label) where it runs out."""
    out = np.zeros(size, dtype=array.dtype)
    if array.dtype != np.uint8:
        out[...] = array.min()
    src = tuple(slice(max(s, 0), min(s + n, d)) for s, n, d in zip(start, size, array.shape, strict=True))
    dst = tuple(slice(sl.start - s, sl.stop - s) for sl, s in zip(src, start, strict=True))
    out[dst] = array[src]
    return out


def sample_patches(
    patients: list[PatientArrays],
    size: tuple[int, int, int],
    batch: int,
    rng: np.random.Generator,
    positive_fraction: float = 0.5,
    flip: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of 3D patches (B, 1, D, H, W) and labels (B, 1, D, H, W).

    A patch is centred on a random foreground voxel with probability ``positive_fraction`` (with a random
    offset of up to a quarter of the patch), else on a random region voxel (or anywhere if there is none).
    """
    images, labels = [], []
    half = np.array(size) // 2
    for _ in range(batch):
        patient = patients[int(rng.integers(len(patients)))]
        shape = np.array(patient.image.shape)
        if len(patient.foreground) and rng.random() < positive_fraction:
            centre = patient.foreground[int(rng.integers(len(patient.foreground)))]
            centre = centre + rng.integers(-(half // 2), half // 2 + 1)
        elif len(patient.region):
            centre = patient.region[int(rng.integers(len(patient.region)))]
        else:
            centre = rng.integers(0, shape)
        # keep the patch inside the volume where the volume is big enough
        start = np.clip(centre - half, 0, np.maximum(shape - np.array(size), 0))
        image = _crop(patient.image, tuple(int(s) for s in start), size).astype(np.float32)
        label = _crop(patient.label, tuple(int(s) for s in start), size)
        if flip and rng.random() < 0.5:
            image, label = image[:, :, ::-1], label[:, :, ::-1]
        images.append(np.ascontiguousarray(image))
        labels.append(np.ascontiguousarray(label))
    return torch.from_numpy(np.stack(images)[:, None]), torch.from_numpy(np.stack(labels)[:, None].astype(np.int64))


def sample_slices(
    patients: list[PatientArrays],
    size: tuple[int, int],
    batch: int,
    rng: np.random.Generator,
    positive_fraction: float = 0.5,
    flip: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of 2D slices (B, 1, H, W) and labels (B, 1, H, W): patches of depth 1 of :func:`sample_patches`."""
    images, labels = sample_patches(patients, (1, *size), batch, rng, positive_fraction, flip)
    return images[:, :, 0], labels[:, :, 0]
