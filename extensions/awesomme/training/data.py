"""Phantom patients -> training arrays on the network's grid (pre-processing and downsampling as in serving)."""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from scipy import ndimage

from awesomme.inference.config import SegmentationModelConfig
from awesomme.inference.predict import downsample, preprocess
from awesomme.phantoms import EVALUATION_SEED_START, synthesize

__all__ = [
    "NegativeMix",
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
MAX_CENTRES = 20000  # a sparse subset of candidate voxels is enough to draw patch centres from
NO_INDICES = np.zeros((0, 3), np.int32)


@dataclass
class PatientArrays:
    """One patient on the network's grid: ``image`` (D, H, W) float16 after pre-processing and downsampling,
    ``label`` (D, H, W) uint8 0/1, and voxel indices to centre patches on: the foreground (and each of its
    connected lesions), the negative ``region``, and bright non-foreground voxels inside the region (``hard``:
    vessels in the lung look like nodules in cross-section)."""

    seed: int
    image: NDArray[np.float16]
    label: NDArray[np.uint8]
    foreground: NDArray[np.int32] = field(default_factory=lambda: NO_INDICES)
    region: NDArray[np.int32] = field(default_factory=lambda: NO_INDICES)
    lesions: list[NDArray[np.int32]] = field(default_factory=list)
    hard: NDArray[np.int32] = field(default_factory=lambda: NO_INDICES)


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


def _centres(mask: NDArray[Any]) -> NDArray[np.int32]:
    """Indices of a mask's voxels, thinned to at most about ``MAX_CENTRES``."""
    indices = np.argwhere(mask).astype(np.int32)
    return indices[:: max(1, len(indices) // MAX_CENTRES)]


def _lesions(label: NDArray[np.uint8]) -> list[NDArray[np.int32]]:
    """Foreground voxel indices per 26-connected component."""
    components, count = ndimage.label(label > 0, structure=np.ones((3, 3, 3), bool))
    if count == 0:
        return []
    flat = np.argwhere(components > 0).astype(np.int32)
    order = np.argsort(components[tuple(flat.T)], kind="stable")
    sizes = np.bincount(components[tuple(flat.T)], minlength=count + 1)[1:]
    return [part for part in np.split(flat[order], np.cumsum(sizes)[:-1]) if len(part)]


def patient_arrays(
    volume: NDArray[Any],
    mask: NDArray[Any],
    config: SegmentationModelConfig,
    seed: int = 0,
    region_mask: NDArray[Any] | None = None,
    bright_min: float | None = None,
) -> PatientArrays:
    """Image and label of one patient on the network grid; ``region_mask`` (optional, full grid) marks where
    negative samples should come from (e.g. the lungs for nodules).  With ``bright_min`` (raw intensity, HU
    for CT) the region's voxels at least that bright (and not foreground) become hard-negative centres."""
    factors = config.inference.downsample
    image = network_input(volume, config)[0].numpy().astype(np.float16)
    label = downsample_mask(mask, factors)
    if label.shape != image.shape:
        raise ValueError(f"label {label.shape} and image {image.shape} differ")
    arrays = PatientArrays(
        seed=seed, image=image, label=label, foreground=np.argwhere(label > 0).astype(np.int32), lesions=_lesions(label)
    )
    if region_mask is not None:
        region = downsample_mask(region_mask, factors) > 0
        arrays.region = _centres(region)
        if bright_min is not None:
            bright = downsample_mask(np.asarray(volume) >= bright_min, factors) > 0
            arrays.hard = _centres(bright & region & (label == 0))
    return arrays


def load_patients(
    kind: str,
    seeds: Iterable[int],
    config: SegmentationModelConfig,
    structure: str,
    region_structure: str | None = None,
    bright_min: float | None = None,
    workers: int = 1,
) -> list[PatientArrays]:
    """Synthesize each training patient (default grid) and keep only its network-grid arrays (in memory), in seed
    order; ``workers`` processes build them side by side (each patient depends on its seed alone)."""
    build = partial(_patient, kind, config, structure, region_structure, bright_min)
    checked = check_training_seeds(seeds)
    if workers <= 1:
        return [build(seed) for seed in checked]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(build, checked))


def _patient(
    kind: str,
    config: SegmentationModelConfig,
    structure: str,
    region_structure: str | None,
    bright_min: float | None,
    seed: int,
) -> PatientArrays:
    phantom = synthesize(kind, seed)
    region = phantom.truth[region_structure] if region_structure else None
    arrays = patient_arrays(phantom.volume, phantom.truth[structure], config, seed, region, bright_min)
    logger.debug("patient %s %s: %s", kind, seed, arrays.image.shape)
    return arrays


def _crop(array: NDArray[Any], start: tuple[int, ...], size: tuple[int, ...]) -> NDArray[Any]:
    """``array[start:start+size]`` padded with the array's minimum (image) or 0 (label) where it runs out."""
    src = tuple(slice(max(s, 0), min(s + n, d)) for s, n, d in zip(start, size, array.shape, strict=True))
    if all(sl.stop - sl.start == n for sl, n in zip(src, size, strict=True)):
        return array[src].copy()  # inside the volume: no padding (the minimum of a whole volume is slow to find)
    out = np.zeros(size, dtype=array.dtype)
    if array.dtype != np.uint8:
        out[...] = array.min()
    dst = tuple(slice(sl.start - s, sl.stop - s) for sl, s in zip(src, start, strict=True))
    out[dst] = array[src]
    return out


@dataclass(frozen=True)
class NegativeMix:
    """Where negative patches are centred: ``hard`` is the share of negatives centred on
    :attr:`PatientArrays.hard` voxels, ``anywhere`` the share centred anywhere in the volume (so the network
    also sees air outside the body and the rest of the body); the rest on region voxels."""

    hard: float = 0.0
    anywhere: float = 0.0


def _pick(rng: np.random.Generator, indices: NDArray[np.int32]) -> NDArray[np.int32]:
    return indices[int(rng.integers(len(indices)))]


def _positive_centre(patient: PatientArrays, rng: np.random.Generator, per_lesion: bool) -> NDArray[np.int32]:
    """A foreground voxel; with ``per_lesion`` every lesion is equally likely, so small nodules get as many
    patches as large ones."""
    if per_lesion and patient.lesions:
        return _pick(rng, patient.lesions[int(rng.integers(len(patient.lesions)))])
    return _pick(rng, patient.foreground)


def _negative_centre(patient: PatientArrays, rng: np.random.Generator, mix: NegativeMix | None) -> NDArray[Any]:
    if mix is not None:  # no extra draw without a mix: runs without one stay reproducible
        draw = rng.random()
        if draw < mix.hard and len(patient.hard):
            return _pick(rng, patient.hard)
        if mix.hard <= draw < mix.hard + mix.anywhere:
            return rng.integers(0, np.array(patient.image.shape))
    if len(patient.region):
        return _pick(rng, patient.region)
    return rng.integers(0, np.array(patient.image.shape))


def sample_patches(
    patients: list[PatientArrays],
    size: tuple[int, int, int],
    batch: int,
    rng: np.random.Generator,
    positive_fraction: float = 0.5,
    flip: bool = False,
    negatives: NegativeMix | None = None,
    per_lesion: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of 3D patches (B, 1, D, H, W) and labels (B, 1, D, H, W).

    A patch is centred on a random foreground voxel with probability ``positive_fraction`` (with a random
    offset of up to a quarter of the patch), else on a negative centre chosen by ``negatives`` (a region
    voxel by default, or anywhere if there is none).
    """
    images, labels = [], []
    half = np.array(size) // 2
    for _ in range(batch):
        patient = patients[int(rng.integers(len(patients)))]
        shape = np.array(patient.image.shape)
        if len(patient.foreground) and rng.random() < positive_fraction:
            centre = _positive_centre(patient, rng, per_lesion)
            centre = centre + rng.integers(-(half // 2), half // 2 + 1)
        else:
            centre = _negative_centre(patient, rng, negatives)
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
