"""Segmentations made elsewhere (NIfTI, NRRD, DICOM SEG, DICOM RTSTRUCT) read onto a series' grid.

Every reader returns a label map (slice, row, column; value = the file's segment number) and the names the file
itself gives its segments. A file that cannot be read as the format it claims, that unpacks to more than a label
of the series can hold, or that belongs to another grid, series or frame of reference is refused (422).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import nibabel as nib
import nrrd
import numpy as np
import pydicom
from pydicom import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sr.coding import Code

from awesomme.core.errors import InvalidInput
from awesomme.dicom.label_geometry import GeometryTolerance, label_map_on_grid
from awesomme.dicom.rtstruct import RTSTRUCT_STORAGE, check_rtstruct_references, rasterise_rtstruct
from awesomme.dicom.seg import check_seg_frames, segment_codes, segment_colours, segment_masks
from awesomme.dicom.volumes import LPS_TO_RAS, Grid

__all__ = [
    "FORMATS",
    "LABELMAP_SEG_STORAGE",
    "SEG_STORAGE",
    "FileLabels",
    "SourceFile",
    "format_of",
    "read_binary_seg",
    "read_segmentation_file",
]

FORMATS = ("nifti", "nrrd", "dicom-seg", "rtstruct")
SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.7"
# Bytes a decoded label may take per voxel of the series (float64 is the widest type a label file uses), plus
# room for headers: what a compressed file may unpack to before it is refused as a bomb.
_BYTES_PER_VOXEL = 8
_HEADER_ROOM = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    """An uploaded segmentation file as its SEG's origin records it: the format found, its name, its sha256."""

    format: str
    name: str
    sha256: str


@dataclass(frozen=True)
class FileLabels:
    label_map: np.ndarray  # (slice, row, column), uint16, 0 = background
    names: dict[int, str] = field(default_factory=dict)
    # What a DICOM SEG declares of its segments, by value in ``label_map``: coded (category, type), CIELab colour.
    types: dict[int, tuple[Code, Code]] = field(default_factory=dict)
    colours: dict[int, tuple[int, int, int]] = field(default_factory=dict)


def format_of(filename: str, claimed: str | None = None) -> str:
    """The format claimed for an upload: the ``format`` field, else the file name's suffix (DICOM otherwise)."""
    if claimed:
        if claimed not in FORMATS:
            raise InvalidInput(f"format {claimed!r} is not one of {', '.join(FORMATS)}")
        return claimed
    name = filename.lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith(".nrrd"):
        return "nrrd"
    return "dicom"  # SEG or RTSTRUCT: the SOP class decides


def read_segmentation_file(
    data: bytes,
    claimed: str,
    source: Sequence[Dataset],
    grid: Grid,
    tolerance: GeometryTolerance,
    only: Collection[str] | None = None,
) -> tuple[str, FileLabels]:
    """The upload as labels on ``grid``, and the format it turned out to be. ``only`` keeps the SEG segments or
    RTSTRUCT ROIs of those names or numbers (1 = the file's first), so that overlapping ones can come one by one."""
    limit = int(np.prod(grid.shape)) * _BYTES_PER_VOXEL + _HEADER_ROOM
    if claimed == "nifti":
        return claimed, _read_nifti(data, grid, tolerance, limit)
    if claimed == "nrrd":
        return claimed, _read_nrrd(data, grid, tolerance, limit)
    dataset = _read_dicom(data)
    sop_class = str(getattr(dataset, "SOPClassUID", ""))
    _refuse_labelmap(sop_class)
    found = {SEG_STORAGE: "dicom-seg", RTSTRUCT_STORAGE: "rtstruct"}.get(sop_class)
    if found is None or claimed not in ("dicom", found):
        wanted = "a DICOM SEG or RTSTRUCT" if claimed == "dicom" else f"a {claimed}"
        raise InvalidInput(f"the file is not {wanted}: its SOP class is {sop_class or 'missing'}")
    if found == "dicom-seg":
        return found, _read_seg(dataset, source, tolerance, only)
    check_rtstruct_references(dataset, source)
    masks, names = rasterise_rtstruct(dataset, grid, tolerance.origin_mm)
    return found, _combined(masks, names, only)


def _gunzipped(data: bytes, limit: int) -> bytes:
    """A gzip stream inflated to at most ``limit`` bytes (a small file must not unpack to a huge one)."""
    inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    try:
        inflated = inflater.decompress(data, limit + 1)
    except zlib.error as error:
        raise InvalidInput(f"the gzip stream is damaged: {error}") from error
    if len(inflated) > limit:
        raise InvalidInput(f"the file unpacks to more than {limit} bytes: more than a label of this series")
    if not inflater.eof:
        raise InvalidInput("the gzip stream is truncated")
    return inflated


def _read_nifti(data: bytes, grid: Grid, tolerance: GeometryTolerance, limit: int) -> FileLabels:
    raw = _gunzipped(data, limit) if data[:2] == b"\x1f\x8b" else data
    if len(raw) > limit:
        raise InvalidInput(f"the file holds more than {limit} bytes: more than a label of this series")
    try:
        image_class = nib.Nifti2Image if raw[4:8] == b"n+2\0" else nib.Nifti1Image
        image = image_class.from_bytes(raw)
        array = np.asanyarray(image.dataobj)  # reads the voxels: a truncated file fails here
    except Exception as error:  # nibabel raises many types for a damaged or foreign file
        raise InvalidInput(f"not a readable NIfTI file: {error}") from error
    header = image.header
    if int(header["sform_code"]) == 0 and int(header["qform_code"]) == 0:
        raise InvalidInput("the NIfTI file has no geometry (qform and sform codes are 0): it cannot be placed")
    affine = image.affine
    assert affine is not None
    return FileLabels(label_map_on_grid(array, affine, grid, tolerance))


def _read_nrrd(data: bytes, grid: Grid, tolerance: GeometryTolerance, limit: int) -> FileLabels:
    stream = io.BytesIO(data)
    try:
        header = nrrd.read_header(stream)
    except Exception as error:  # pynrrd raises its own and stdlib types
        raise InvalidInput(f"not a readable NRRD file: {error}") from error
    if "data file" in header or "datafile" in header:
        raise InvalidInput("detached NRRD data files are not accepted: send one .nrrd file")
    sizes = [int(v) for v in header.get("sizes", [])]
    if int(np.prod(sizes or [0])) * _BYTES_PER_VOXEL > limit:
        raise InvalidInput(f"the NRRD declares {sizes} voxels: more than a label of this series")
    affine = _nrrd_affine(header)
    encoding = str(header.get("encoding", "raw")).lower()
    if encoding in ("bzip2", "bz2"):
        raise InvalidInput("bzip2-encoded NRRD is not read: use raw or gzip encoding")
    if encoding in ("gzip", "gz") and not int(header.get("line skip", 0) or 0):
        # pynrrd inflates without a bound: inflate here within the limit, and hand it the raw bytes.
        stream = io.BytesIO(_gunzipped(stream.read(), limit))
        header = {**header, "encoding": "raw"}
    try:
        array = nrrd.read_data(header, stream, filename=None)
    except Exception as error:
        raise InvalidInput(f"the NRRD data cannot be read (truncated or damaged): {error}") from error
    names = _slicer_segment_names(header)
    return FileLabels(label_map_on_grid(array, affine, grid, tolerance), names)


def _nrrd_affine(header: dict) -> np.ndarray:
    directions = header.get("space directions")
    origin = header.get("space origin")
    if directions is None or origin is None:
        raise InvalidInput("the NRRD has no geometry (space directions and origin): it cannot be placed")
    axes = [np.asarray(d, dtype=float) for d in directions]
    axes = [axis for axis in axes if axis.shape == (3,) and np.all(np.isfinite(axis))]  # drop 'none' list axes
    if len(axes) != 3:
        raise InvalidInput("the NRRD must be one 3-D label volume (several layers or components are not read)")
    space = np.eye(4)
    space[:3, :3] = np.stack(axes, axis=1)
    space[:3, 3] = np.asarray(origin, dtype=float)
    kind = str(header.get("space", "left-posterior-superior")).lower()
    if kind in ("left-posterior-superior", "lps"):
        return LPS_TO_RAS @ space
    if kind in ("right-anterior-superior", "ras"):
        return space
    raise InvalidInput(f"NRRD space {kind!r} is not read: use left-posterior-superior or right-anterior-superior")


def _slicer_segment_names(header: dict) -> dict[int, str]:
    """3D Slicer's .seg.nrrd names its segments in ``SegmentN_Name`` / ``SegmentN_LabelValue`` fields."""
    names: dict[int, str] = {}
    for key, value in header.items():
        if key.startswith("Segment") and key.endswith("_Name"):
            prefix = key[: -len("_Name")]
            label_value = header.get(f"{prefix}_LabelValue")
            if label_value is not None and str(label_value).isdigit():
                names[int(label_value)] = str(value)
    return names


def _read_dicom(data: bytes) -> Dataset:
    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
        dataset.SOPClassUID  # noqa: B018 - required to tell SEG from RTSTRUCT
    except (InvalidDicomError, AttributeError, ValueError, EOFError, KeyError, TypeError, OSError) as error:
        raise InvalidInput(f"not a readable DICOM file: {error}") from error
    return dataset


def read_binary_seg(data: bytes, source: Sequence[Dataset], tolerance: GeometryTolerance) -> FileLabels:
    """A BINARY DICOM SEG (a viewer's save) as labels on the ``source`` grid, every frame checked against its
    source instance; a LABELMAP, FRACTIONAL or other object is refused naming what it is."""
    dataset = _read_dicom(data)
    sop_class = str(getattr(dataset, "SOPClassUID", ""))
    _refuse_labelmap(sop_class)
    if sop_class != SEG_STORAGE:
        raise InvalidInput(f"the file is not a DICOM SEG ({SEG_STORAGE}): its SOP class is {sop_class or 'missing'}")
    kind = str(getattr(dataset, "SegmentationType", "") or "missing")
    if kind != "BINARY":
        raise InvalidInput(f"the SEG's SegmentationType is {kind}: only BINARY segmentations are saved here")
    return _read_seg(dataset, source, tolerance, None)


def _refuse_labelmap(sop_class: str) -> None:
    if sop_class == LABELMAP_SEG_STORAGE:
        raise InvalidInput(
            f"the file is a Label Map Segmentation (SOP class {LABELMAP_SEG_STORAGE}, LABELMAP), which is not read: "
            f"save it as a BINARY segmentation (SOP class {SEG_STORAGE}; in OHIF, the segmentation store mode "
            "'bitmap')"
        )


def _read_seg(
    dataset: Dataset, source: Sequence[Dataset], tolerance: GeometryTolerance, only: Collection[str] | None
) -> FileLabels:
    frame, series = str(getattr(source[0], "FrameOfReferenceUID", "")), str(source[0].SeriesInstanceUID)
    if str(getattr(dataset, "FrameOfReferenceUID", "")) != frame:
        raise InvalidInput(
            f"the SEG lies in frame of reference {getattr(dataset, 'FrameOfReferenceUID', '(none)')}, "
            f"not the series' {frame}"
        )
    referenced = {str(item.SeriesInstanceUID) for item in getattr(dataset, "ReferencedSeriesSequence", None) or []}
    if series not in referenced:
        raise InvalidInput(f"the SEG references series {', '.join(sorted(referenced)) or '(none)'}, not {series}")
    check_seg_frames(dataset, source, tolerance)
    names, masks = segment_masks(dataset, source, frames_checked=True)
    labels = _combined(masks, names, only)
    # _combined numbers the file's segments 1..N in segment-number order: carry their codes and colours along.
    codes, colours = segment_codes(dataset), segment_colours(dataset)
    numbers = sorted(int(item.SegmentNumber) for item in dataset.SegmentSequence)
    by_value = dict(enumerate(numbers, start=1))
    return FileLabels(
        labels.label_map,
        labels.names,
        {value: codes[by_value[value]] for value in labels.names if by_value[value] in codes},
        {value: colours[by_value[value]] for value in labels.names if by_value[value] in colours},
    )


def _combined(masks: list[np.ndarray], names: list[str], only: Collection[str] | None) -> FileLabels:
    """Segment masks as one label map (numbered in the file's order); overlapping segments cannot share one."""
    chosen = [
        (number, mask, name)
        for number, (mask, name) in enumerate(zip(masks, names, strict=True), start=1)
        if not only or name in only or str(number) in only
    ]
    if not chosen:
        raise InvalidInput(f"no segment to import: the file holds {names or 'none'}")
    label_map = np.zeros(chosen[0][1].shape, np.uint16)
    for number, mask, name in chosen:
        if np.any(label_map[mask]):
            raise InvalidInput(
                f"segment {name!r} overlaps an earlier one: import overlapping segments separately (label_map "
                "names the ones to import)"
            )
        label_map[mask] = number
    return FileLabels(label_map, {number: name for number, _, name in chosen})
