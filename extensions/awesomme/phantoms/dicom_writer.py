"""Write a volume as a single-frame axial DICOM series (explicit VR little endian).

Only what a valid CT Image Storage / MR Image Storage object needs plus the usual
descriptive attributes; every value is deterministic, so writing the same phantom
twice gives byte-identical files.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import FileDataset
from pydicom.uid import UID

from awesomme.dicom.image_series import CT_IMAGE_STORAGE, MR_IMAGE_STORAGE, file_meta, image_plane

from .geometry import Grid, format_ds

__all__ = ["CT_IMAGE_STORAGE", "MR_IMAGE_STORAGE", "SeriesInfo", "deterministic_uid", "write_series"]

# Our marker: lets a re-run recognise (and replace) files it wrote itself, never foreign ones.
MANUFACTURER = "AWESOMME"
MODEL_NAME = "Synthetic Phantom"
IMPLEMENTATION_VERSION = "AWESOMME_PHANTOM"
FILE_PREFIX = "IM"

# Namespace of our name-based UUIDs (uuid5 of a fixed URL, itself deterministic).
_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/awesomme/phantoms")


def deterministic_uid(*parts: object) -> UID:
    """``2.25.<uuid5>`` UID derived from ``parts`` (PS3.5 B.2, UUID-derived).

    ``pydicom.uid.generate_uid(prefix=None, entropy_srcs=...)`` would look natural but in
    pydicom 2.x it ignores ``entropy_srcs`` when ``prefix`` is None and returns a random
    UUID, so we build the name-based UUID ourselves.
    """
    name = "/".join(str(p) for p in parts)
    return UID(f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}")


@dataclass(frozen=True)
class SeriesInfo:
    """Everything about a series that is the same for all its instances."""

    modality: str  # "CT" or "MR"
    sop_class_uid: UID
    patient_name: str
    patient_id: str
    patient_birth_date: str
    patient_sex: str
    patient_age: str
    study_uid: UID
    series_uid: UID
    frame_of_reference_uid: UID
    study_date: str
    study_time: str
    study_id: str
    accession_number: str
    study_description: str
    series_number: int
    series_description: str
    body_part: str
    patient_position: str
    image_type: tuple[str, ...]
    bits_stored: int
    windows: tuple[tuple[float, float, str], ...]  # (centre, width, explanation)
    rescale: tuple[float, float] | None = None  # (slope, intercept), CT only
    extra: Mapping[str, Any] = field(default_factory=dict)  # modality-specific keywords


def _instance_dataset(
    info: SeriesInfo, grid: Grid, index: int, sop_instance_uid: UID, pixels: NDArray[np.uint16]
) -> FileDataset:
    dz = grid.spacing[0]
    z = float(grid.z[index])
    meta = file_meta(info.sop_class_uid, sop_instance_uid, IMPLEMENTATION_VERSION)
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian = True
    ds.is_implicit_VR = False

    # SOP common, patient, study, series, equipment
    ds.ImageType = list(info.image_type)
    ds.SOPClassUID = info.sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    ds.InstanceCreationDate = info.study_date
    ds.InstanceCreationTime = info.study_time
    for prefix in ("Study", "Series", "Acquisition", "Content"):
        setattr(ds, f"{prefix}Date", info.study_date)
        setattr(ds, f"{prefix}Time", info.study_time)
    ds.AccessionNumber = info.accession_number
    ds.Modality = info.modality
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MODEL_NAME
    ds.SoftwareVersions = IMPLEMENTATION_VERSION
    ds.InstitutionName = "Synthetic"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = info.study_description
    ds.SeriesDescription = info.series_description
    ds.PatientName = info.patient_name
    ds.PatientID = info.patient_id
    ds.PatientBirthDate = info.patient_birth_date
    ds.PatientSex = info.patient_sex
    ds.PatientAge = info.patient_age
    ds.PatientIdentityRemoved = "YES"  # never had any: a synthetic phantom
    ds.DeidentificationMethod = "Synthetic phantom, no real patient"
    ds.BodyPartExamined = info.body_part
    ds.PatientPosition = info.patient_position
    ds.StudyInstanceUID = info.study_uid
    ds.SeriesInstanceUID = info.series_uid
    ds.StudyID = info.study_id
    ds.SeriesNumber = info.series_number
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = index + 1
    ds.FrameOfReferenceUID = info.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    for keyword, value in info.extra.items():
        setattr(ds, keyword, value)

    # Image plane: axial, identity directions, geometry as exact decimal strings
    image_plane(grid.affine_lps(), index, format_ds).apply(ds)
    ds.SpacingBetweenSlices = format_ds(dz)
    ds.SliceLocation = format_ds(z)

    # Image pixel
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = info.bits_stored
    ds.HighBit = info.bits_stored - 1
    ds.PixelRepresentation = 0
    if info.rescale is not None:
        ds.RescaleIntercept = format_ds(info.rescale[1])
        ds.RescaleSlope = format_ds(info.rescale[0])
        ds.RescaleType = "HU"
    ds.WindowCenter = [format_ds(w[0]) for w in info.windows]
    ds.WindowWidth = [format_ds(w[1]) for w in info.windows]
    ds.WindowCenterWidthExplanation = [w[2] for w in info.windows]
    ds.PixelData = pixels.tobytes()
    return ds


def _is_ours(path: Path) -> bool:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Manufacturer", "SoftwareVersions"])
    except Exception:  # anything unreadable is not ours to delete
        return False
    return ds.get("Manufacturer") == MANUFACTURER and ds.get("SoftwareVersions") == IMPLEMENTATION_VERSION


def write_series(
    volume: NDArray[np.integer],
    grid: Grid,
    info: SeriesInfo,
    instance_uids: Sequence[UID],
    out_dir: Path,
    stored_offset: int = 0,
) -> list[Path]:
    """Write slice k as instance k+1 to ``out_dir/IM0001.dcm``...; return the paths.

    Stored pixel values are ``volume + stored_offset`` (e.g. HU + 1024 for CT with
    RescaleIntercept -1024); they must fit ``info.bits_stored`` unsigned bits.

    Files of an earlier phantom run in ``out_dir`` that this series does not overwrite
    (e.g. it had more slices) are removed, since they would otherwise mix two series;
    files written by anything else are left alone.
    """
    if volume.shape != grid.shape:
        raise ValueError(f"volume shape {volume.shape} != grid {grid.shape}")
    lo, hi = int(volume.min()) + stored_offset, int(volume.max()) + stored_offset
    if lo < 0 or hi >= 2**info.bits_stored:
        raise ValueError(f"stored values {lo}..{hi} do not fit {info.bits_stored} bits")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{FILE_PREFIX}{k + 1:04d}.dcm" for k in range(grid.shape[0])]
    keep = set(paths)
    for stale in sorted(out_dir.glob(f"{FILE_PREFIX}*.dcm")):
        if stale not in keep and _is_ours(stale):
            stale.unlink()
    for k, path in enumerate(paths):
        stored = (volume[k].astype(np.int32) + stored_offset).astype("<u2")
        ds = _instance_dataset(info, grid, k, instance_uids[k], stored)
        ds.save_as(path, write_like_original=False)
    return paths
