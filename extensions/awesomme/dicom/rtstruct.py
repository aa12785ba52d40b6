"""DICOM RTSTRUCT contours rasterised on a series' grid (pydicom reads it; highdicom has no RTSTRUCT reader).

Each closed planar contour is turned into patient -> voxel coordinates, must lie on one slice plane of the series,
and fills the pixels whose centres it encloses (``skimage.draw.polygon``); contours of one ROI on one slice
combine by exclusive or, so an inner contour cuts a hole, as the standard intends.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydicom import Dataset
from skimage.draw import polygon

from awesomme.core.errors import InvalidInput
from awesomme.dicom.volumes import LPS_TO_RAS, Grid

__all__ = ["RTSTRUCT_STORAGE", "check_rtstruct_references", "rasterise_rtstruct"]

RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"


def check_rtstruct_references(rtstruct: Dataset, source: Sequence[Dataset]) -> None:
    """The structure set must be drawn on this series: its frame of reference, and its series where it names one."""
    frame = str(getattr(source[0], "FrameOfReferenceUID", ""))
    referenced = getattr(rtstruct, "ReferencedFrameOfReferenceSequence", None) or []
    frames = {str(getattr(item, "FrameOfReferenceUID", "")) for item in referenced}
    frames |= {str(getattr(roi, "ReferencedFrameOfReferenceUID", "")) for roi in _rois(rtstruct)}
    frames.discard("")
    if frame not in frames:
        raise InvalidInput(
            f"the RTSTRUCT is drawn in frame of reference {', '.join(sorted(frames)) or '(none)'}, "
            f"not the series' {frame}"
        )
    series = {
        str(item.SeriesInstanceUID)
        for reference in referenced
        for study in getattr(reference, "RTReferencedStudySequence", None) or []
        for item in getattr(study, "RTReferencedSeriesSequence", None) or []
        if "SeriesInstanceUID" in item
    }
    own = str(source[0].SeriesInstanceUID)
    if series and own not in series:
        raise InvalidInput(f"the RTSTRUCT references series {', '.join(sorted(series))}, not {own}")


def _rois(rtstruct: Dataset) -> list[Dataset]:
    return list(getattr(rtstruct, "StructureSetROISequence", None) or [])


def rasterise_rtstruct(rtstruct: Dataset, grid: Grid, plane_tolerance_mm: float) -> tuple[list[np.ndarray], list[str]]:
    """One mask (slice, row, column) and name per ROI that has contours, in the file's order."""
    names = {int(roi.ROINumber): str(getattr(roi, "ROIName", "") or f"ROI {roi.ROINumber}") for roi in _rois(rtstruct)}
    to_voxel = np.linalg.inv(LPS_TO_RAS @ grid.affine)  # LPS mm -> (column, row, slice)
    slice_mm = grid.spacing[2]
    masks, labels = [], []
    for roi in getattr(rtstruct, "ROIContourSequence", None) or []:
        contours = list(getattr(roi, "ContourSequence", None) or [])
        if not contours:
            continue
        number = int(getattr(roi, "ReferencedROINumber", 0))
        mask = np.zeros(grid.shape, dtype=bool)
        for contour in contours:
            kind = str(getattr(contour, "ContourGeometricType", "CLOSED_PLANAR"))
            if kind != "CLOSED_PLANAR":
                raise InvalidInput(f"ROI {names.get(number, number)} has a {kind} contour: only CLOSED_PLANAR is read")
            _fill_contour(mask, contour, to_voxel, slice_mm, plane_tolerance_mm, names.get(number, str(number)))
        masks.append(mask)
        labels.append(names.get(number, f"ROI {number}"))
    return masks, labels


def _fill_contour(
    mask: np.ndarray, contour: Dataset, to_voxel: np.ndarray, slice_mm: float, tolerance_mm: float, name: str
) -> None:
    try:
        points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
    except (AttributeError, ValueError) as error:
        raise InvalidInput(f"ROI {name} has a contour without readable ContourData: {error}") from error
    if len(points) < 3:
        raise InvalidInput(f"ROI {name} has a contour of {len(points)} points: a closed contour needs 3")
    if not np.isfinite(points).all():
        raise InvalidInput(f"ROI {name} has a contour with a NaN or infinite coordinate: points must be finite (mm)")
    voxels = (to_voxel @ np.c_[points, np.ones(len(points))].T).T[:, :3]
    if not np.isfinite(voxels).all():  # finite millimetres too large for the series' grid
        raise InvalidInput(f"ROI {name} has a contour with coordinates far outside the series")
    plane = float(np.round(voxels[:, 2].mean()))
    off_plane_mm = float(np.abs(voxels[:, 2] - plane).max()) * slice_mm
    if off_plane_mm > tolerance_mm:
        raise InvalidInput(
            f"ROI {name} has a contour {off_plane_mm:.3g} mm off the series' slice planes (tolerance {tolerance_mm} mm)"
        )
    index = int(plane)
    if not 0 <= index < mask.shape[0]:
        raise InvalidInput(f"ROI {name} has a contour outside the series (slice {index} of {mask.shape[0]})")
    rows, columns = polygon(voxels[:, 1], voxels[:, 0], shape=mask.shape[1:])
    filled = np.zeros(mask.shape[1:], dtype=bool)
    filled[rows, columns] = True
    mask[index] ^= filled
