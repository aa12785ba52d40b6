"""A label volume's geometry against its series' grid.

A file that describes the series' grid in another axis order (a NIfTI written RAS+ or LPS+, axes swapped) is
reoriented onto the grid; one that does not is refused, saying which of size, spacing, orientation or origin
differs and by how much.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from nibabel import orientations

from awesomme.core.config import Settings
from awesomme.core.errors import InvalidInput
from awesomme.dicom.volumes import Grid

__all__ = ["GeometryTolerance", "label_map_on_grid", "whole_labels"]


@dataclass(frozen=True)
class GeometryTolerance:
    spacing_mm: float = 0.01
    origin_mm: float = 0.1
    orientation_deg: float = 0.1

    @classmethod
    def from_settings(cls, settings: Settings) -> GeometryTolerance:
        return cls(
            settings.seg_import_spacing_tolerance_mm,
            settings.seg_import_origin_tolerance_mm,
            settings.seg_import_orientation_tolerance_deg,
        )


def _triple(values: np.ndarray | tuple[float, ...], unit: str = "") -> str:
    return "(" + ", ".join(f"{float(v):.4g}" for v in values) + ")" + unit


def _reoriented(data: np.ndarray, affine: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """``data`` (i, j, k) and its affine, with axes permuted and flipped to the grid's axis order."""
    transform = orientations.ornt_transform(
        orientations.io_orientation(affine), orientations.io_orientation(grid.affine)
    )
    moved = orientations.apply_orientation(data, transform)
    return moved, affine @ orientations.inv_ornt_aff(transform, data.shape)


def _check_geometry(affine: np.ndarray, grid: Grid, tolerance: GeometryTolerance) -> None:
    file_axes, grid_axes = affine[:3, :3], grid.affine[:3, :3]
    file_spacing, grid_spacing = np.linalg.norm(file_axes, axis=0), np.linalg.norm(grid_axes, axis=0)
    spacing_error = float(np.abs(file_spacing - grid_spacing).max())
    if spacing_error > tolerance.spacing_mm:
        raise InvalidInput(
            f"spacing differs by {spacing_error:.4g} mm: the file has {_triple(file_spacing, ' mm')}, the series "
            f"{_triple(grid_spacing, ' mm')} (column, row, slice; tolerance {tolerance.spacing_mm} mm)"
        )
    cosines = np.sum((file_axes / file_spacing) * (grid_axes / grid_spacing), axis=0)
    angle = float(np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0))).max())
    if angle > tolerance.orientation_deg:
        raise InvalidInput(
            f"orientation differs by {angle:.4g} degrees from the series' (tolerance {tolerance.orientation_deg})"
        )
    shift = affine[:3, 3] - grid.affine[:3, 3]
    distance = float(np.linalg.norm(shift))
    if distance > tolerance.origin_mm:
        raise InvalidInput(
            f"origin differs by {distance:.4g} mm: the file's first voxel is at {_triple(affine[:3, 3], ' mm')}, "
            f"the series' at {_triple(grid.affine[:3, 3], ' mm')} (RAS; tolerance {tolerance.origin_mm} mm)"
        )


def whole_labels(data: np.ndarray) -> np.ndarray:
    """Label values as unsigned 16-bit segment numbers; fractions, negatives or huge values are refused."""
    if data.dtype.kind not in "biuf":
        raise InvalidInput(f"label values must be numbers, not {data.dtype}")
    if data.dtype.kind == "f" and not (np.all(np.isfinite(data)) and np.all(np.mod(data, 1) == 0)):
        raise InvalidInput("label values must be whole segment numbers")
    if data.size and (data.min() < 0 or data.max() > 65535):
        raise InvalidInput("label values must lie in 0..65535")
    return data.astype(np.uint16)


def label_map_on_grid(data: np.ndarray, affine: np.ndarray, grid: Grid, tolerance: GeometryTolerance) -> np.ndarray:
    """``data`` indexed (i, j, k) with ``affine`` (to RAS mm) as a label map on ``grid`` (slice, row, column)."""
    data = np.squeeze(data) if data.ndim > 3 else data
    if data.ndim != 3:
        raise InvalidInput(f"a label volume has 3 dimensions; this one has {data.ndim} ({tuple(data.shape)})")
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InvalidInput("the file's geometry (affine) is missing or degenerate")
    data, affine = _reoriented(data, affine, grid)
    expected = grid.shape[::-1]
    if data.shape != expected:
        raise InvalidInput(
            f"size differs: the file has {' x '.join(map(str, data.shape))} voxels, the series "
            f"{' x '.join(map(str, expected))} (columns x rows x slices)"
        )
    _check_geometry(affine, grid, tolerance)
    return np.ascontiguousarray(whole_labels(data).transpose(2, 1, 0))
