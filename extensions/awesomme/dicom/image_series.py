"""What every single-frame CT or MR Image Storage instance we write shares, whatever its source: the file meta
and the Image Plane module computed from a voxel-to-LPS affine.

Slice k of a volume indexed (i, j, k) is an instance whose columns follow i and rows follow j: its Image Position is
the affine applied to (0, 0, k), its Image Orientation the unit i then j axes, its Pixel Spacing the lengths of the
j then i axes (between rows, between columns), its Slice Thickness the length of the k axis. The phantoms
(``phantoms.dicom_writer``, axial grids on a 1/64 mm lattice, written with exact decimals) and the legacy NIfTI
conversion (``dicom.nifti_series``, any orthonormal affine) both write through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

__all__ = ["CT_IMAGE_STORAGE", "MR_IMAGE_STORAGE", "ImagePlane", "decimal_string", "file_meta", "image_plane"]

CT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.2")
MR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.4")


def decimal_string(value: float) -> str:
    """A DS of at most 16 characters (10 significant digits: far below 1e-3 mm at any patient coordinate)."""
    text = f"{value:.10g}"
    return "0" if text in ("-0", "0") else text


def file_meta(sop_class_uid: UID, sop_instance_uid: str, implementation_version: str | None = None) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    if implementation_version:
        meta.ImplementationVersionName = implementation_version
    return meta


@dataclass(frozen=True)
class ImagePlane:
    position: list[str]
    orientation: list[str]
    pixel_spacing: list[str]  # between rows, between columns
    slice_thickness: str

    def apply(self, ds: Dataset) -> None:
        ds.ImagePositionPatient = self.position
        ds.ImageOrientationPatient = self.orientation
        ds.PixelSpacing = self.pixel_spacing
        ds.SliceThickness = self.slice_thickness


def image_plane(
    affine_lps: NDArray[np.float64], k: int, decimal: Callable[[float], str] = decimal_string
) -> ImagePlane:
    """The Image Plane of slice ``k``; ``decimal`` writes each value (an exact form may refuse to round)."""
    lengths = np.linalg.norm(affine_lps[:3, :3], axis=0)
    rows_follow, columns_follow = affine_lps[:3, 0] / lengths[0], affine_lps[:3, 1] / lengths[1]
    position = affine_lps @ np.array([0.0, 0.0, float(k), 1.0])
    return ImagePlane(
        position=[decimal(float(v)) for v in position[:3]],
        orientation=[decimal(float(v)) for v in (*rows_follow, *columns_follow)],
        pixel_spacing=[decimal(float(lengths[1])), decimal(float(lengths[0]))],
        slice_thickness=decimal(float(lengths[2])),
    )
