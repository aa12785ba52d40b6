"""SEGs as OHIF 3.13 writes them in the browser, for the save and import tests, and the fixtures made from them.

``bitmap_seg`` builds the object OHIF's segmentation adapter (dcmjs's Segmentation derivation) hands our save route
with the store mode ``bitmap``: SOP class 66.4, Explicit VR Little Endian, BINARY, only the frames that hold a
segment, a PlanePositionSequence and a DerivationImageSequence (the source instance) per frame, the orientation
and spacing shared, no SpatialLocationsPreserved, an empty Content Creator's Name and "Unspecified" as
manufacturer. ``labelmap_seg`` builds what OHIF writes by default: a Label Map Segmentation (66.7), RLE Lossless.

``python -m tests.ohif_seg_files`` writes the fixtures under ``tests/fixtures/ohif/``, each with a ``.json``
naming the phantom (kind, seed, shape) whose series its frames reference; with ``--dcmjs`` it also has dcmjs
(the library OHIF's adapter runs, from ``ohif-plugin/node_modules``) write the same segments as
``dcmjs-bitmap-seg.dcm``. A SEG captured from a real OHIF run may sit beside them (``ohif-bitmap-seg.dcm``);
without its ``.json`` the tests find its phantom by its series UID.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.pixel_data_handlers.numpy_handler import pack_bits
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

from awesomme.dicom.seg import rgb_to_dicom_lab
from awesomme.dicom.volumes import sort_by_position
from awesomme.phantoms import KINDS, default_grid, generate_patient
from awesomme.phantoms.dicom_writer import deterministic_uid

FIXTURES = Path(__file__).parent / "fixtures" / "ohif"
BITMAP_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.7"
FIXTURE_PHANTOM = {"kind": "osteosarcoma-mr", "seed": 612, "shape": [24, 160, 160]}
# The captured SEG's name (added by the viewer's end-to-end run), and ours.
CAPTURED = "ohif-bitmap-seg.dcm"
BITMAP_FIXTURE = "ohif-like-bitmap-seg.dcm"
DCMJS_FIXTURE = "dcmjs-bitmap-seg.dcm"
LABELMAP_FIXTURE = "ohif-like-labelmap-seg.dcm"


@dataclass(frozen=True)
class Segment:
    number: int
    label: str
    category: tuple[str, str, str]  # (value, scheme, meaning)
    kind: tuple[str, str, str]
    rgb: tuple[int, int, int]


TISSUE = ("85756007", "SCT", "Tissue")
SEGMENTS = (
    Segment(1, "tumour", TISSUE, TISSUE, (230, 60, 60)),  # OHIF's default codes, whatever the name
    Segment(
        2,
        "oedema",
        ("49755003", "SCT", "Morphologically Altered Structure"),
        ("79654002", "SCT", "Edema"),
        (60, 120, 230),
    ),
)


def _code(value: tuple[str, str, str]) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value
    return item


def _common(source: Sequence[Dataset], sop_class: str, transfer_syntax: str) -> FileDataset:
    first = source[0]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "StudyID",
        "AccessionNumber",
        "ReferringPhysicianName",
        "FrameOfReferenceUID",
    ):
        setattr(ds, keyword, getattr(first, keyword, ""))
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = generate_uid(), 99, 1
    ds.Modality, ds.SeriesDescription = "SEG", "Segmentation"
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer, ds.ManufacturerModelName, ds.SoftwareVersions, ds.DeviceSerialNumber = (
        "Unspecified",
        "Unspecified",
        "Unspecified",
        "Unspecified",
    )
    ds.ContentLabel, ds.ContentDescription, ds.ContentCreatorName = "SEGMENTATION", "", ""
    ds.ContentDate, ds.ContentTime = "20261207", "120000"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = first.Rows, first.Columns
    ds.LossyImageCompression = "00"
    shared = Dataset()
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = list(first.ImageOrientationPatient)
    measures.PixelSpacing = list(first.PixelSpacing)
    measures.SliceThickness = getattr(first, "SliceThickness", 1)
    measures.SpacingBetweenSlices = getattr(first, "SpacingBetweenSlices", measures.SliceThickness)
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    shared.PixelMeasuresSequence = DicomSequence([measures])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    referenced = Dataset()
    referenced.SeriesInstanceUID = first.SeriesInstanceUID
    instances = []
    for instance in source:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = instance.SOPClassUID, instance.SOPInstanceUID
        instances.append(item)
    referenced.ReferencedInstanceSequence = DicomSequence(instances)
    ds.ReferencedSeriesSequence = DicomSequence([referenced])
    organisation = Dataset()
    organisation.DimensionOrganizationUID = generate_uid()
    ds.DimensionOrganizationSequence = DicomSequence([organisation])
    ds.DimensionOrganizationType = "3D"
    return ds


def _segment_sequence(segments: Sequence[Segment]) -> DicomSequence:
    items = []
    for segment in segments:
        item = Dataset()
        item.SegmentNumber, item.SegmentLabel, item.SegmentAlgorithmType = segment.number, segment.label, "MANUAL"
        item.SegmentedPropertyCategoryCodeSequence = DicomSequence([_code(segment.category)])
        item.SegmentedPropertyTypeCodeSequence = DicomSequence([_code(segment.kind)])
        item.RecommendedDisplayCIELabValue = list(rgb_to_dicom_lab(segment.rgb))
        items.append(item)
    return DicomSequence(items)


def _frame(instance: Dataset, segment: int, slice_index: int) -> Dataset:
    frame = Dataset()
    position = Dataset()
    position.ImagePositionPatient = list(instance.ImagePositionPatient)
    frame.PlanePositionSequence = DicomSequence([position])
    content = Dataset()
    content.DimensionIndexValues = [segment, slice_index + 1]
    frame.FrameContentSequence = DicomSequence([content])
    source_image = Dataset()
    source_image.ReferencedSOPClassUID, source_image.ReferencedSOPInstanceUID = (
        instance.SOPClassUID,
        instance.SOPInstanceUID,
    )
    source_image.PurposeOfReferenceCodeSequence = DicomSequence(
        [_code(("121322", "DCM", "Source image for image processing operation"))]
    )
    derivation = Dataset()
    derivation.SourceImageSequence = DicomSequence([source_image])
    derivation.DerivationCodeSequence = DicomSequence([_code(("113076", "DCM", "Segmentation"))])
    frame.DerivationImageSequence = DicomSequence([derivation])
    identification = Dataset()
    identification.ReferencedSegmentNumber = segment
    frame.SegmentIdentificationSequence = DicomSequence([identification])
    return frame


def bitmap_seg(source: Sequence[Dataset], label_map: np.ndarray, segments: Sequence[Segment] = SEGMENTS) -> FileDataset:
    """OHIF's bitmap SEG of ``label_map`` (slice, row, column; value = segment number) on the ordered ``source``."""
    ds = _common(source, BITMAP_SOP_CLASS, ExplicitVRLittleEndian)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    ds.SegmentationType = "BINARY"
    pointers = []
    for pointer, group, label in (
        (0x0062000B, 0x0062000A, "ReferencedSegmentNumber"),
        (0x00200032, 0x00209113, "ImagePositionPatient"),
    ):
        item = Dataset()
        item.DimensionOrganizationUID = ds.DimensionOrganizationSequence[0].DimensionOrganizationUID
        item.DimensionIndexPointer, item.FunctionalGroupPointer, item.DimensionDescriptionLabel = pointer, group, label
        pointers.append(item)
    ds.DimensionIndexSequence = DicomSequence(pointers)
    ds.SegmentSequence = _segment_sequence(segments)
    frames, planes = [], []
    for segment in segments:
        for index, instance in enumerate(source):
            plane = label_map[index] == segment.number
            if plane.any():  # OHIF writes only the frames that hold the segment
                frames.append(_frame(instance, segment.number, index))
                planes.append(plane)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(frames)
    ds.NumberOfFrames = len(frames)
    packed = pack_bits(np.stack(planes).astype(np.uint8).ravel())
    ds.PixelData = packed + (b"\0" if len(packed) % 2 else b"")
    return ds


def labelmap_seg(
    source: Sequence[Dataset], label_map: np.ndarray, segments: Sequence[Segment] = SEGMENTS
) -> FileDataset:
    """OHIF's default: a Label Map Segmentation (66.7, LABELMAP), one 8-bit frame per slice, RLE Lossless."""
    ds = _common(source, LABELMAP_SOP_CLASS, ExplicitVRLittleEndian)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.SegmentationType = "LABELMAP"
    ds.SegmentSequence = _segment_sequence(segments)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(
        [_frame(instance, 1, index) for index, instance in enumerate(source)]
    )
    ds.NumberOfFrames = len(source)
    ds.PixelData = np.ascontiguousarray(label_map.astype(np.uint8)).tobytes()
    ds.compress(RLELossless)
    return ds


def decode_frames(ds: Dataset, source: Sequence[Dataset]) -> np.ndarray:
    """A bitmap SEG read without highdicom: each frame's bits put on its source instance's slice, as its segment
    number (what the platform must store)."""
    index = {str(instance.SOPInstanceUID): k for k, instance in enumerate(source)}
    rows, columns, count = int(ds.Rows), int(ds.Columns), int(ds.NumberOfFrames)
    bits = np.unpackbits(np.frombuffer(ds.PixelData, np.uint8), bitorder="little")[: count * rows * columns]
    planes = bits.reshape(count, rows, columns).astype(bool)
    label_map = np.zeros((len(source), rows, columns), np.uint16)
    for plane, frame in zip(planes, ds.PerFrameFunctionalGroupsSequence, strict=True):
        uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        label_map[index[str(uid)]][plane] = int(frame.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
    return label_map


def phantom_of(path: Path) -> dict:
    """The phantom (kind, seed, shape) whose series a fixture's frames reference: its ``.json``, else found by the
    series UID among the phantoms' deterministic UIDs."""
    sidecar = path.with_suffix(".json")
    if sidecar.exists():
        return json.loads(sidecar.read_text())
    series = str(pydicom.dcmread(path, stop_before_pixels=True).ReferencedSeriesSequence[0].SeriesInstanceUID)
    for kind in KINDS:
        for seed in range(2000):
            for shape in ((24, 160, 160), default_grid(kind, seed).shape):
                if deterministic_uid("awesomme-phantom", kind, seed, tuple(shape), "series") == series:
                    return {"kind": kind, "seed": seed, "shape": list(shape)}
    raise LookupError(f"{path.name} references series {series}, which is no phantom's")


def fixture_label_map(source: Sequence[Dataset], truth: np.ndarray) -> np.ndarray:
    """What the fixture holds: the tumour's truth on five slices (a sparse edit, as a brush leaves), and a box of
    "oedema" beside it on two others."""
    label_map = np.zeros(truth.shape, np.uint8)
    slices = [k for k in range(truth.shape[0]) if truth[k].any()]
    middle = slices[len(slices) // 2]
    for k in range(middle - 2, middle + 3):
        label_map[k][truth[k]] = 1
    free = [k for k in range(truth.shape[0]) if not label_map[k].any()]
    for k in free[:2]:
        label_map[k, 20:40, 30:60] = 2
    return label_map


def _dcmjs_seg(scratch: Path, files: list[Path], source: Sequence[Dataset], label_map: np.ndarray, out: Path) -> None:
    by_uid = {str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID): path for path in files}
    inputs = {
        "files": [str(by_uid[str(instance.SOPInstanceUID)]) for instance in source],
        "positions": [[float(v) for v in instance.ImagePositionPatient] for instance in source],
        "shape": list(label_map.shape),
        "segments": [
            {"number": s.number, "label": s.label, "category": s.category, "kind": s.kind, "rgb": s.rgb}
            for s in SEGMENTS
        ],
    }
    (scratch / "input.json").write_text(json.dumps(inputs))
    np.ascontiguousarray(label_map, dtype=np.uint8).tofile(scratch / "labelmap.u8")
    subprocess.run(["node", str(FIXTURES / "make_dcmjs_seg.cjs"), str(scratch), str(out)], check=True)


def write_fixtures(out: Path = FIXTURES, dcmjs: bool = False) -> None:
    from tests.seg_files import truth_mask

    out.mkdir(parents=True, exist_ok=True)
    phantom = FIXTURE_PHANTOM
    with tempfile.TemporaryDirectory() as scratch:
        patient = generate_patient(phantom["kind"], phantom["seed"], Path(scratch), shape=tuple(phantom["shape"]))
        source = sort_by_position([pydicom.dcmread(path) for path in patient.dicom_files])
        label_map = fixture_label_map(source, truth_mask(patient.truth["tumour"]))
        if dcmjs:
            _dcmjs_seg(Path(scratch), list(patient.dicom_files), source, label_map, out / DCMJS_FIXTURE)
            (out / DCMJS_FIXTURE).with_suffix(".json").write_text(json.dumps(phantom) + "\n")
    for name, build in ((BITMAP_FIXTURE, bitmap_seg), (LABELMAP_FIXTURE, labelmap_seg)):
        build(source, label_map).save_as(out / name, write_like_original=False)
        (out / name).with_suffix(".json").write_text(json.dumps(phantom) + "\n")


if __name__ == "__main__":
    arguments = [argument for argument in sys.argv[1:] if argument != "--dcmjs"]
    write_fixtures(Path(arguments[0]) if arguments else FIXTURES, dcmjs="--dcmjs" in sys.argv)
