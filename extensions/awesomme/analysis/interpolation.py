"""Slice interpolation of a sparse manual segmentation: shape-based, by signed distance.

Each pair of segmented slices with unsegmented slices between them is turned into two signed distance maps
(positive inside, in millimetres); the slices between take the linear blend of the two maps, weighted by
their distance to each, and keep what is inside. Shapes grow, shrink and move smoothly, which copying or
blending the masks themselves does not do.
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import distance_transform_edt

__all__ = ["dice", "interpolate_slices", "segmented_slices"]


def segmented_slices(mask: NDArray[np.bool_]) -> list[int]:
    """Indices of the slices (axis 0) holding at least one segmented voxel."""
    return [int(k) for k in np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))]


def _signed_distance(plane: NDArray[np.bool_], spacing: tuple[float, float]) -> NDArray[np.float64]:
    inside = distance_transform_edt(plane, sampling=spacing)
    outside = distance_transform_edt(~plane, sampling=spacing) if not plane.all() else np.zeros(plane.shape)
    return np.asarray(inside, dtype=float) - np.asarray(outside, dtype=float)


def interpolate_slices(mask: NDArray[np.bool_], spacing: tuple[float, float]) -> NDArray[np.bool_]:
    """``mask`` (slice, row, column) with every gap between two segmented slices filled; ``spacing`` is (row,
    column) in mm. Slices outside the first and last segmented ones stay as they are."""
    filled = mask.astype(bool, copy=True)
    labelled = segmented_slices(filled)
    for low, high in itertools.pairwise(labelled):
        if high - low < 2:
            continue
        below, above = _signed_distance(filled[low], spacing), _signed_distance(filled[high], spacing)
        for k in range(low + 1, high):
            weight = (k - low) / (high - low)
            filled[k] = (1.0 - weight) * below + weight * above > 0
    return filled


def dice(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total
