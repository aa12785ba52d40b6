"""A DICOM series as a volume in memory with its geometry, and back to NIfTI for MONAI's loaders.

Arrays are indexed (slice, row, column). ``affine`` maps (column, row, slice) indices to RAS millimetres, the
NIfTI/nibabel convention, so ``to_nifti`` writes the transposed array and the same affine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from pydicom import Dataset

from awesomme.core.config import get_settings
from awesomme.core.errors import InvalidInput

__all__ = [
    "LPS_TO_RAS",
    "Grid",
    "Volume",
    "affine_from_datasets",
    "grid_from_datasets",
    "sort_by_position",
    "volume_from_datasets",
]

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class Grid:
    """Where voxels lie: ``shape`` is (slices, rows, columns), ``affine`` maps (column, row, slice) to RAS mm."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    @property
    def spacing(self) -> tuple[float, float, float]:
        """(column, row, slice) spacing in mm."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def voxel_volume_ml(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3]))) / 1000.0


@dataclass(frozen=True)
class Volume:
    array: np.ndarray
    affine: np.ndarray
    series_uid: str
    modality: str

    @property
    def grid(self) -> Grid:
        return Grid(tuple(self.array.shape), self.affine)  # type: ignore[arg-type]

    def to_nifti(self, path: Path) -> Path:
        # NIfTI stores (x, y, z) in Fortran order, which is our (slice, row, column) C order: the transposed view
        # is written as one block, with no copy of the volume.
        image = nib.Nifti1Image(self.array.transpose(2, 1, 0), self.affine)
        image.header.set_xyzt_units("mm")
        with path.open("wb") as handle:  # a stream: the cache writes to a name nibabel would not recognise
            image.to_stream(handle)
        return path


def _normal(ds: Dataset) -> np.ndarray:
    orientation = np.asarray(ds.ImageOrientationPatient, dtype=float)
    return np.cross(orientation[:3], orientation[3:])


def sort_by_position(datasets: Sequence[Dataset], tolerance_mm: float | None = None) -> list[Dataset]:
    """Order the instances of a series along the slice normal; refuse, naming the reason, what is not one regular
    grid: several frames of reference, instances of other sizes or orientations, two instances at one position
    (even with identical pixels: never repaired silently), or slice gaps varying by more than ``tolerance_mm``
    (the setting ``AWESOMME_SLICE_SPACING_TOLERANCE_MM`` when not given: missing slices)."""
    if not datasets:
        raise InvalidInput("the series has no instances")
    for attribute in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns"):
        if any(attribute not in ds for ds in datasets):
            raise InvalidInput(f"an instance lacks {attribute}: not a volume")
    frames = {str(ds.FrameOfReferenceUID) for ds in datasets if "FrameOfReferenceUID" in ds}
    if len(frames) > 1:
        raise InvalidInput(f"the series spans {len(frames)} frames of reference: not one volume")
    normal = _normal(datasets[0])
    ordered = sorted(datasets, key=lambda ds: float(np.dot(normal, np.asarray(ds.ImagePositionPatient, float))))
    first = ordered[0]
    for ds in ordered[1:]:
        if (ds.Rows, ds.Columns) != (first.Rows, first.Columns):
            raise InvalidInput(
                f"instances of the series differ in size ({first.Rows}x{first.Columns}, {ds.Rows}x{ds.Columns})"
            )
        if not np.allclose(
            np.asarray(ds.ImageOrientationPatient, float), np.asarray(first.ImageOrientationPatient, float)
        ):
            raise InvalidInput("instances of the series differ in orientation")
    if len(ordered) > 1:
        _check_spacing(ordered, normal, _tolerance(tolerance_mm))
    return ordered


def _tolerance(given: float | None) -> float:
    return given if given is not None else get_settings().slice_spacing_tolerance_mm


def _check_spacing(ordered: Sequence[Dataset], normal: np.ndarray, tolerance_mm: float) -> None:
    positions = np.array([np.dot(normal, np.asarray(ds.ImagePositionPatient, float)) for ds in ordered])
    gaps = np.diff(positions)
    duplicate = np.flatnonzero(gaps <= tolerance_mm)
    if duplicate.size:
        a, b = ordered[int(duplicate[0])], ordered[int(duplicate[0]) + 1]
        raise InvalidInput(
            f"instances {a.SOPInstanceUID} and {b.SOPInstanceUID} lie at the same position "
            f"({positions[int(duplicate[0])]:.3f} mm along the slice normal): duplicate slices"
        )
    if np.ptp(gaps) > tolerance_mm:
        raise InvalidInput(
            f"slice spacing varies from {gaps.min():.3f} to {gaps.max():.3f} mm (more than {tolerance_mm} mm): "
            "missing slices, or not one evenly spaced volume"
        )


def affine_from_datasets(ordered: Sequence[Dataset]) -> np.ndarray:
    first = ordered[0]
    orientation = np.asarray(first.ImageOrientationPatient, dtype=float)
    row_spacing, column_spacing = (float(v) for v in first.PixelSpacing)
    origin = np.asarray(first.ImagePositionPatient, dtype=float)
    if len(ordered) > 1:
        slice_step = (np.asarray(ordered[-1].ImagePositionPatient, float) - origin) / (len(ordered) - 1)
    else:
        thickness = float(getattr(first, "SpacingBetweenSlices", 0) or getattr(first, "SliceThickness", 1) or 1)
        slice_step = _normal(first) * thickness
    lps = np.eye(4)
    lps[:3, 0] = orientation[:3] * column_spacing
    lps[:3, 1] = orientation[3:] * row_spacing
    lps[:3, 2] = slice_step
    lps[:3, 3] = origin
    return LPS_TO_RAS @ lps


def _pixels(ordered: Sequence[Dataset]) -> np.ndarray:
    try:
        stored = np.stack([ds.pixel_array for ds in ordered])
    except Exception as error:  # pydicom raises many types for bad pixel data
        raise InvalidInput(f"pixel data cannot be decoded: {error}") from error
    slopes = {float(getattr(ds, "RescaleSlope", 1) or 1) for ds in ordered}
    intercepts = {float(getattr(ds, "RescaleIntercept", 0) or 0) for ds in ordered}
    if slopes == {1.0} and intercepts == {0.0}:
        return stored
    if slopes == {1.0} and len(intercepts) == 1 and float(next(iter(intercepts))).is_integer():
        values = stored.astype(np.int32) + int(next(iter(intercepts)))
        return values.astype(np.int16) if values.min() >= -32768 and values.max() <= 32767 else values
    slope = np.array([float(getattr(ds, "RescaleSlope", 1) or 1) for ds in ordered], np.float32)[:, None, None]
    intercept = np.array([float(getattr(ds, "RescaleIntercept", 0) or 0) for ds in ordered], np.float32)
    return stored.astype(np.float32) * slope + intercept[:, None, None]


def volume_from_datasets(datasets: Sequence[Dataset]) -> Volume:
    ordered = sort_by_position(datasets)
    return Volume(
        array=_pixels(ordered),
        affine=affine_from_datasets(ordered),
        series_uid=str(ordered[0].SeriesInstanceUID),
        modality=str(getattr(ordered[0], "Modality", "")),
    )


def grid_from_datasets(datasets: Sequence[Dataset]) -> Grid:
    """The grid of a series from its metadata alone (no pixel data needed)."""
    ordered = sort_by_position(datasets)
    return Grid((len(ordered), int(ordered[0].Rows), int(ordered[0].Columns)), affine_from_datasets(ordered))
