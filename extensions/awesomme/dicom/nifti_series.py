"""A legacy NIfTI volume as a single-frame CT or MR Image Storage series, its geometry taken from the affine.

The NIfTI affine maps voxel (i, j, k) to RAS millimetres; DICOM's patient space is LPS, so x and y change sign.
Slice k is instance k + 1: its pixels are ``data[:, :, k].T`` (rows follow j, columns follow i), its position the
affine applied to (0, 0, k), its orientation the unit i and j axes. A volume the Image Plane module cannot describe
exactly (a sheared affine, an sform and a qform that disagree, more than three dimensions) is refused, as is a CT
whose values are not integers. Integer values in the int16 range are stored as they are; other values are scaled
to int16 with a Rescale Slope and Intercept. Every UID is derived from the caller's keys, so a re-import writes the
same instances. The series says it was converted (``DERIVED\\SECONDARY``, a Derivation Description).
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

import nibabel as nib
import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.uid import UID

from awesomme.dicom.image_series import CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, decimal_string, file_meta, image_plane

__all__ = [
    "CT_IMAGE_STORAGE",
    "MR_IMAGE_STORAGE",
    "NIFTI_DERIVATION",
    "NiftiRefused",
    "SeriesAttributes",
    "keyed_uid",
    "lps_affine",
    "read_nifti",
    "series_from_nifti",
]

# Says how the series was made, and nothing of whom: it is written again after de-identification removes it.
NIFTI_DERIVATION = "Converted from a NIfTI volume by AWESOMME; acquisition parameters unknown"
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_SHEAR_TOLERANCE = 1e-4  # |cosine| between two voxel axes
_FORM_TOLERANCE_MM = 1e-3  # sform and qform may differ by rounding only
_INT16 = (-32768, 32767)


class NiftiRefused(ValueError):
    """The volume cannot become an exact DICOM series; the message says why."""


@dataclass(frozen=True)
class SeriesAttributes:
    """What the series says beyond its geometry (from the import's sheet)."""

    modality: str  # CT | MR
    patient_id: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    source_name: str
    patient_sex: str = ""
    patient_age: str = ""
    study_date: str = ""
    series_description: str = ""
    body_part: str = ""
    series_number: int = 1


def keyed_uid(*parts: object) -> str:
    """``2.25.<128 bits of SHA-256 of the parts>``: the same parts, the same UID."""
    digest = hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def _gunzip(data: bytes, limit: int) -> bytes:
    stream = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = stream.decompress(data, limit + 1)
    except zlib.error as error:
        raise NiftiRefused(f"not a readable gzip file: {error}") from None
    if len(out) > limit:
        raise NiftiRefused(f"unpacks to more than {limit} bytes")
    return out


def read_nifti(data: bytes, max_voxels: int) -> nib.Nifti1Image:
    """A NIfTI-1 or -2 image from the bytes of a ``.nii`` or ``.nii.gz``; its shape checked before its data."""
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, max_voxels * 8 + 1024**2)
    for kind in (nib.Nifti1Image, nib.Nifti2Image):
        try:
            image = kind.from_bytes(data)
            break
        except Exception:  # noqa: S112 (nibabel raises several kinds for a header that is not its own)
            continue
    else:
        raise NiftiRefused("not a NIfTI-1 or NIfTI-2 file")
    shape = tuple(int(n) for n in image.header.get_data_shape())
    if len(shape) > 3 and any(n != 1 for n in shape[3:]):
        raise NiftiRefused(f"a {len(shape)}-D volume {shape}: only 3-D images are imported")
    if len(shape) < 3 or min(shape[:3]) < 1:
        raise NiftiRefused(f"shape {shape} is not a 3-D volume")
    if int(np.prod(shape[:3])) > max_voxels:
        raise NiftiRefused(f"{int(np.prod(shape[:3]))} voxels, more than the {max_voxels} allowed")
    return image


def _checked_affine(image: nib.Nifti1Image) -> NDArray[np.float64]:
    sform, sform_code = image.get_sform(coded=True)
    qform, qform_code = image.get_qform(coded=True)
    if sform_code and qform_code and float(np.abs(sform - qform).max()) > _FORM_TOLERANCE_MM:
        raise NiftiRefused("its sform and qform disagree: which geometry is meant is unclear")
    affine = np.asarray(sform if sform_code else qform if qform_code else image.affine, dtype=np.float64)
    axes = affine[:3, :3]
    lengths = np.linalg.norm(axes, axis=0)
    if not np.all(np.isfinite(affine)) or np.any(lengths <= 0):
        raise NiftiRefused("its affine is not finite or has a zero voxel size")
    unit = axes / lengths
    for a, b in ((0, 1), (0, 2), (1, 2)):
        if abs(float(unit[:, a] @ unit[:, b])) > _SHEAR_TOLERANCE:
            raise NiftiRefused("its affine is sheared (voxel axes not perpendicular): DICOM planes cannot hold it")
    return affine


def lps_affine(image: nib.Nifti1Image) -> NDArray[np.float64]:
    """The image's checked voxel-to-LPS affine."""
    return _RAS_TO_LPS @ _checked_affine(image)


def _stored(data: NDArray[np.float64], modality: str) -> tuple[NDArray[np.int16], float, float]:
    """int16 values with the slope and intercept that give the data back."""
    if not np.all(np.isfinite(data)):
        raise NiftiRefused("it holds NaN or infinite values")
    integer = bool(np.all(data == np.round(data)))
    if modality == "CT" and not integer:
        raise NiftiRefused("a CT image with non-integer values (Hounsfield units are integers)")
    low, high = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    if integer and _INT16[0] <= low and high <= _INT16[1]:
        return data.astype(np.int16), 1.0, 0.0
    if modality == "CT":
        raise NiftiRefused(f"CT values {low:g}..{high:g} do not fit 16 bits")
    intercept = float(decimal_string((high + low) / 2))
    slope = float(decimal_string((high - low) / 65534)) if high > low else 1.0
    stored = np.clip(np.round((data - intercept) / slope), -32767, 32767).astype(np.int16)
    return stored, slope, intercept


def _common(attributes: SeriesAttributes, sop_class: UID) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL" if attributes.modality == "CT" else "OTHER"]
    ds.DerivationDescription = NIFTI_DERIVATION
    ds.PatientName = f"{attributes.patient_id}^"
    ds.PatientID = attributes.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = attributes.patient_sex
    if attributes.patient_age:
        ds.PatientAge = attributes.patient_age
    ds.StudyInstanceUID = attributes.study_uid
    ds.StudyDate = attributes.study_date
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.Modality = attributes.modality
    ds.SeriesInstanceUID = attributes.series_uid
    ds.SeriesNumber = attributes.series_number
    ds.SeriesDescription = attributes.series_description
    if attributes.body_part:
        ds.BodyPartExamined = attributes.body_part
    ds.Laterality = ""
    ds.PatientPosition = ""
    ds.Manufacturer = ""
    ds.FrameOfReferenceUID = attributes.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.ContentDate = attributes.study_date
    ds.ContentTime = ""
    ds.AcquisitionNumber = ""
    if attributes.modality == "CT":
        ds.KVP = ""
    else:
        ds.ScanningSequence = "RM"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = ""
        ds.EchoTime = ""
        ds.EchoTrainLength = ""
        ds.RepetitionTime = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    return ds


def series_from_nifti(image: nib.Nifti1Image, attributes: SeriesAttributes) -> list[Dataset]:
    """The instances of the series (every one built before any is stored)."""
    if attributes.modality not in ("CT", "MR"):
        raise NiftiRefused(f"modality {attributes.modality}: only CT and MR images are imported")
    affine = lps_affine(image)
    try:
        data = np.asanyarray(image.dataobj, dtype=np.float64)
    except Exception as error:
        raise NiftiRefused(f"its voxel data cannot be read ({type(error).__name__})") from None
    data = data.reshape(data.shape[:3])
    stored, slope, intercept = _stored(data, attributes.modality)
    sop_class = CT_IMAGE_STORAGE if attributes.modality == "CT" else MR_IMAGE_STORAGE
    common = _common(attributes, sop_class)
    instances = []
    for k in range(stored.shape[2]):
        ds = Dataset()
        ds.update(common)
        uid = keyed_uid(attributes.series_uid, "instance", k)
        ds.file_meta = file_meta(sop_class, uid)
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.SOPInstanceUID = uid
        ds.InstanceNumber = k + 1
        image_plane(affine, k).apply(ds)
        pixels = np.ascontiguousarray(stored[:, :, k].T)
        ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
        ds.RescaleIntercept = decimal_string(intercept)
        ds.RescaleSlope = decimal_string(slope)
        if attributes.modality == "CT":
            ds.RescaleType = "HU"
        ds.PixelData = pixels.astype("<i2").tobytes()
        instances.append(ds)
    return instances
