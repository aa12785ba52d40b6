"""Segmentation files made from a phantom's truth, as desktop tools would write them: NIfTI, NRRD, DICOM SEG
(highdicom) and DICOM RTSTRUCT (pydicom, contours from ``skimage.measure.find_contours``)."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import highdicom as hd
import nibabel as nib
import nrrd
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.coding import Code
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from skimage.measure import find_contours

from awesomme.dicom.volumes import LPS_TO_RAS, affine_from_datasets, sort_by_position

TISSUE = Code("85756007", "SCT", "Tissue")


def truth_mask(path: Path) -> np.ndarray:
    """A phantom's truth file as a boolean mask (slice, row, column)."""
    image = nib.load(str(path))
    assert isinstance(image, nib.Nifti1Image)
    return np.asanyarray(image.dataobj).transpose(2, 1, 0) > 0


def nifti_bytes(label_map: np.ndarray, affine: np.ndarray, compress: bool = True) -> bytes:
    """``label_map`` (slice, row, column) with the series' RAS ``affine`` (column, row, slice) as a NIfTI file."""
    image = nib.Nifti1Image(np.ascontiguousarray(label_map.transpose(2, 1, 0)).astype(np.uint8), affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    raw = image.to_bytes()
    return gzip.compress(raw, compresslevel=1) if compress else raw


def nrrd_bytes(label_map: np.ndarray, affine: np.ndarray, names: Mapping[int, str] | None = None) -> bytes:
    """The same as an LPS NRRD (3D Slicer's convention), with Slicer's segment-name fields."""
    lps = LPS_TO_RAS @ affine
    header: dict = {
        "space": "left-posterior-superior",
        "space directions": lps[:3, :3].T,
        "space origin": lps[:3, 3],
        "encoding": "gzip",
    }
    for index, (value, name) in enumerate(sorted((names or {}).items())):
        header[f"Segment{index}_Name"] = name
        header[f"Segment{index}_LabelValue"] = str(value)
    stream = io.BytesIO()
    nrrd.write(stream, np.ascontiguousarray(label_map.transpose(2, 1, 0)).astype(np.uint8), header)
    return stream.getvalue()


def seg_bytes(source: Sequence[Dataset], label_map: np.ndarray, names: Mapping[int, str]) -> bytes:
    """A DICOM SEG (highdicom, the way other tools write one) of ``label_map`` on the ordered ``source``."""
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=names[number],
            segmented_property_category=TISSUE,
            segmented_property_type=TISSUE,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for number in sorted(names)
    ]
    seg = hd.seg.Segmentation(
        source_images=list(source),
        pixel_array=label_map.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=77,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="Desktop tool",
        manufacturer_model_name="tests",
        software_versions="1",
        device_serial_number="1",
    )
    return _dicom_bytes(seg)


def rtstruct_bytes(source: Sequence[Dataset], masks: Mapping[str, np.ndarray], frame_uid: str | None = None) -> bytes:
    """An RTSTRUCT with one ROI per mask: each slice's boundaries (holes included) as CLOSED_PLANAR contours."""
    ordered = sort_by_position(source)
    first = ordered[0]
    lps = LPS_TO_RAS @ affine_from_datasets(ordered)
    frame = frame_uid or str(first.FrameOfReferenceUID)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.481.3")
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "StudyID"):
        setattr(ds, keyword, getattr(first, keyword, ""))
    ds.SeriesInstanceUID = generate_uid()
    ds.StructureSetLabel = "tests"
    series_item = Dataset()
    series_item.SeriesInstanceUID = first.SeriesInstanceUID
    series_item.ContourImageSequence = DicomSequence([_image_reference(image) for image in ordered])
    study_item = Dataset()
    study_item.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study_item.ReferencedSOPInstanceUID = first.StudyInstanceUID
    study_item.RTReferencedSeriesSequence = DicomSequence([series_item])
    frame_item = Dataset()
    frame_item.FrameOfReferenceUID = frame
    frame_item.RTReferencedStudySequence = DicomSequence([study_item])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame_item])
    rois, contours = [], []
    for number, (name, mask) in enumerate(masks.items(), start=1):
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = frame
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = "MANUAL"
        rois.append(roi)
        item = Dataset()
        item.ReferencedROINumber = number
        item.ROIDisplayColor = [255, 0, 0]
        item.ContourSequence = DicomSequence(list(_contours(mask, lps, ordered)))
        contours.append(item)
    ds.StructureSetROISequence = DicomSequence(rois)
    ds.ROIContourSequence = DicomSequence(contours)
    return _dicom_bytes(ds)


def _image_reference(image: Dataset) -> Dataset:
    reference = Dataset()
    reference.ReferencedSOPClassUID = image.SOPClassUID
    reference.ReferencedSOPInstanceUID = image.SOPInstanceUID
    return reference


def _contours(mask: np.ndarray, lps: np.ndarray, ordered: Sequence[Dataset]) -> Iterator[Dataset]:
    for k in range(mask.shape[0]):
        if not mask[k].any():
            continue
        padded = np.pad(mask[k].astype(float), 1)
        for line in find_contours(padded, 0.5):
            rows, columns = line[:, 0] - 1, line[:, 1] - 1
            voxels = np.c_[columns, rows, np.full(len(rows), k), np.ones(len(rows))]
            points = (lps @ voxels.T).T[:, :3]
            contour = Dataset()
            contour.ContourGeometricType = "CLOSED_PLANAR"
            contour.NumberOfContourPoints = len(points)
            contour.ContourData = [f"{v:.6f}" for v in points.ravel()]
            contour.ContourImageSequence = DicomSequence([_image_reference(ordered[k])])
            yield contour


def _dicom_bytes(ds: Dataset) -> bytes:
    stream = io.BytesIO()
    pydicom.dcmwrite(stream, ds, write_like_original=False)
    return stream.getvalue()
