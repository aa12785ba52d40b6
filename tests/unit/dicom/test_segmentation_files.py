"""Reading segmentations made elsewhere onto a series' grid: every format, reorientation, and each refusal."""

from __future__ import annotations

import gzip
import io

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from skimage.draw import disk

from awesomme.core.errors import InvalidInput
from awesomme.dicom.label_geometry import GeometryTolerance
from awesomme.dicom.rtstruct import rasterise_rtstruct
from awesomme.dicom.segmentation_files import FileLabels, format_of, read_segmentation_file
from awesomme.dicom.volumes import Grid, grid_from_datasets, sort_by_position
from tests.seg_files import nifti_bytes, nrrd_bytes, rtstruct_bytes, seg_bytes, truth_mask
from tests.unit.conftest import SmallSeries

TOLERANCE = GeometryTolerance()


def _truth(series: SmallSeries, name: str) -> np.ndarray:
    return truth_mask(series.patient.truth[name])


def _two_labels(series: SmallSeries) -> np.ndarray:
    label_map = np.zeros(series.patient.shape, np.uint16)
    label_map[_truth(series, "bone")] = 2
    label_map[_truth(series, "tumour")] = 1
    return label_map


def _read(series: SmallSeries, data: bytes, claimed: str) -> tuple[str, FileLabels]:
    source = sort_by_position(series.datasets)
    return read_segmentation_file(data, claimed, source, grid_from_datasets(source), TOLERANCE)


def test_the_format_comes_from_the_field_or_the_suffix() -> None:
    assert format_of("a.nii.gz") == format_of("A.NII") == "nifti"
    assert format_of("a.seg.nrrd") == "nrrd"
    assert format_of("a.dcm") == format_of("IM0001") == "dicom"
    assert format_of("a.nii.gz", "rtstruct") == "rtstruct"
    with pytest.raises(InvalidInput, match="not one of"):
        format_of("a", "analyze")


@pytest.mark.parametrize("compress", [True, False])
def test_a_two_label_nifti_comes_back_as_its_truth(small_mr: SmallSeries, compress: bool) -> None:
    truth = _two_labels(small_mr)
    found, labels = _read(small_mr, nifti_bytes(truth, small_mr.patient.affine, compress), "nifti")
    assert found == "nifti"
    assert np.array_equal(labels.label_map, truth)


def test_an_nrrd_comes_back_with_its_segment_names(small_mr: SmallSeries) -> None:
    truth = _two_labels(small_mr)
    found, labels = _read(small_mr, nrrd_bytes(truth, small_mr.patient.affine, {1: "tumour", 2: "bone"}), "nrrd")
    assert found == "nrrd"
    assert np.array_equal(labels.label_map, truth)
    assert labels.names == {1: "tumour", 2: "bone"}


def test_a_seg_comes_back_with_its_segment_labels(small_mr: SmallSeries) -> None:
    source = sort_by_position(small_mr.datasets)
    truth = _two_labels(small_mr)
    found, labels = _read(small_mr, seg_bytes(source, truth, {1: "Tumour", 2: "Femur"}), "dicom")
    assert found == "dicom-seg"
    assert np.array_equal(labels.label_map, truth)
    assert labels.names == {1: "Tumour", 2: "Femur"}


def test_rtstruct_contours_rasterise_to_the_truth_holes_included(small_mr: SmallSeries) -> None:
    tumour, bone = _truth(small_mr, "tumour"), _truth(small_mr, "bone")
    found, labels = _read(small_mr, rtstruct_bytes(small_mr.datasets, {"tumour": tumour, "bone": bone}), "dicom")
    assert found == "rtstruct"
    assert labels.names == {1: "tumour", 2: "bone"}
    assert np.array_equal(labels.label_map == 1, tumour)
    assert np.array_equal(labels.label_map == 2, bone)


def test_a_ring_keeps_its_hole() -> None:
    ring = np.zeros((3, 40, 40), bool)
    ring[1][disk((20, 20), 15)] = True
    ring[1][disk((20, 20), 6)] = False
    affine = np.diag([-1.0, -1.0, 2.0, 1.0])
    grid = Grid((3, 40, 40), affine)

    images = []  # the few attributes the writer needs from a series' instances
    for k in range(3):
        image = Dataset()
        image.SOPClassUID, image.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.4", f"1.2.3.{k}"
        image.SeriesInstanceUID, image.StudyInstanceUID, image.FrameOfReferenceUID = "1.2.3", "1.2", "1.2.9"
        image.ImagePositionPatient, image.ImageOrientationPatient = [0, 0, 2.0 * k], [1, 0, 0, 0, 1, 0]
        image.PixelSpacing, image.Rows, image.Columns = [1, 1], 40, 40
        images.append(image)
    rtstruct = pydicom.dcmread(io.BytesIO(rtstruct_bytes(images, {"ring": ring})))
    masks, names = rasterise_rtstruct(rtstruct, grid, 0.1)
    assert names == ["ring"] and np.array_equal(masks[0], ring)


def test_a_nifti_stored_in_another_axis_order_is_reoriented(small_mr: SmallSeries) -> None:
    truth = _two_labels(small_mr)
    image = nib.Nifti1Image(np.ascontiguousarray(truth.transpose(2, 1, 0)).astype(np.uint8), small_mr.patient.affine)
    turned = image.as_reoriented(np.array([[2, -1], [0, 1], [1, -1]]))  # slice, column, row axes; two flipped
    assert turned.shape != image.shape
    _, labels = _read(small_mr, gzip.compress(turned.to_bytes()), "nifti")
    assert np.array_equal(labels.label_map, truth)


def _mismatch(small_mr: SmallSeries, affine: np.ndarray, shape_cut: int = 0) -> str:
    truth = _two_labels(small_mr)[shape_cut:]
    with pytest.raises(InvalidInput) as error:
        _read(small_mr, nifti_bytes(truth, affine), "nifti")
    return str(error.value)


def test_each_geometry_mismatch_says_what_differs_and_by_how_much(small_mr: SmallSeries) -> None:
    affine = small_mr.patient.affine
    assert _mismatch(small_mr, affine, shape_cut=1).startswith("size differs: the file has 64 x 64 x 11 voxels")
    wider = affine.copy()
    wider[:3, 0] *= 1.1
    assert _mismatch(small_mr, wider).startswith("spacing differs by")
    turned = affine.copy()
    angle = np.radians(2.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    turned[:3, :3] = rotation @ affine[:3, :3]
    message = _mismatch(small_mr, turned)
    assert message.startswith("orientation differs by 2 degrees"), message
    moved = affine.copy()
    moved[:3, 3] += [0.0, 3.0, 4.0]
    assert _mismatch(small_mr, moved).startswith("origin differs by 5 mm")
    slightly = affine.copy()
    slightly[:3, 3] += 0.05  # below the tolerance: rounding
    assert _read(small_mr, nifti_bytes(_two_labels(small_mr), slightly), "nifti")[1].label_map.any()


def test_files_of_another_series_or_frame_are_refused(small_mr: SmallSeries, small_ct: SmallSeries) -> None:
    ct_source = sort_by_position(small_ct.datasets)
    ct_truth = np.zeros(small_ct.patient.shape, np.uint8)
    ct_truth[5, 10:20, 10:20] = 1
    with pytest.raises(InvalidInput, match="frame of reference"):
        _read(small_mr, seg_bytes(ct_source, ct_truth, {1: "x"}), "dicom")
    tumour = _truth(small_mr, "tumour")
    with pytest.raises(InvalidInput, match="frame of reference"):
        _read(small_mr, rtstruct_bytes(small_mr.datasets, {"t": tumour}, frame_uid="1.2.3.4"), "dicom")


def test_damaged_or_foreign_files_are_refused(small_mr: SmallSeries) -> None:
    good = nifti_bytes(_two_labels(small_mr), small_mr.patient.affine)
    with pytest.raises(InvalidInput, match="truncated"):
        _read(small_mr, good[: len(good) // 2], "nifti")
    with pytest.raises(InvalidInput, match="not a readable NIfTI"):
        _read(small_mr, nifti_bytes(_two_labels(small_mr), small_mr.patient.affine, False)[:5000], "nifti")
    with pytest.raises(InvalidInput, match="not a readable NIfTI"):
        _read(small_mr, b"hello, I am text" * 40, "nifti")
    with pytest.raises(InvalidInput, match="NRRD"):
        _read(small_mr, good, "nrrd")
    with pytest.raises(InvalidInput, match="not a readable DICOM"):
        _read(small_mr, good, "dicom")
    bomb = gzip.compress(bytes(200_000_000))  # 200 MB of zeros in 0.2 MB
    with pytest.raises(InvalidInput, match="unpacks to more than"):
        _read(small_mr, bomb, "nifti")
    nrrd_file = nrrd_bytes(_two_labels(small_mr), small_mr.patient.affine)
    header = nrrd_file[: nrrd_file.index(b"\n\n") + 2]
    with pytest.raises(InvalidInput, match="unpacks to more than"):
        _read(small_mr, header + bomb, "nrrd")
    with pytest.raises(InvalidInput, match="truncated"):
        _read(small_mr, nrrd_file[: len(header) + (len(nrrd_file) - len(header)) // 2], "nrrd")
    seg = seg_bytes(sort_by_position(small_mr.datasets), _two_labels(small_mr), {1: "a", 2: "b"})
    with pytest.raises(InvalidInput, match="not a rtstruct"):
        _read(small_mr, seg, "rtstruct")


def test_overlapping_rois_are_refused_unless_some_are_chosen(small_mr: SmallSeries) -> None:
    tumour, bone = _truth(small_mr, "tumour"), _truth(small_mr, "bone")
    body = tumour | bone
    data = rtstruct_bytes(small_mr.datasets, {"body": body, "tumour": tumour})
    with pytest.raises(InvalidInput, match="overlaps an earlier one"):
        _read(small_mr, data, "dicom")
    source = sort_by_position(small_mr.datasets)
    grid = grid_from_datasets(source)
    _, labels = read_segmentation_file(data, "dicom", source, grid, TOLERANCE, only={"tumour"})
    assert labels.names == {2: "tumour"} and np.array_equal(labels.label_map == 2, tumour)
    _, labels = read_segmentation_file(data, "rtstruct", source, grid, TOLERANCE, only={"1"})
    assert labels.names == {1: "body"} and np.array_equal(labels.label_map == 1, body)
    with pytest.raises(InvalidInput, match="no segment to import"):
        read_segmentation_file(data, "dicom", source, grid, TOLERANCE, only={"lung"})
