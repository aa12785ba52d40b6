from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest

from awesomme.core.errors import InvalidInput
from awesomme.orthanc.seg import LABEL_FILE_SUFFIXES, build_seg, read_label_file, seg_label_map, write_label_file
from awesomme.orthanc.volumes import LPS_TO_RAS, grid_from_datasets, sort_by_position
from tests.dicom_checks import dciodvfy_errors
from tests.unit.orthanc.conftest import SmallSeries


def _truth_label_map(series: SmallSeries) -> np.ndarray:
    """tumour = 1, bone = 2, on the (slice, row, column) grid."""
    tumour = np.asanyarray(nib.load(str(series.patient.truth["tumour"])).dataobj).transpose(2, 1, 0)
    bone = np.asanyarray(nib.load(str(series.patient.truth["bone"])).dataobj).transpose(2, 1, 0)
    label_map = np.zeros(tumour.shape, np.uint16)
    label_map[bone > 0] = 2
    label_map[tumour > 0] = 1
    return label_map


def test_a_two_segment_seg_decodes_to_the_same_label_map_and_validates(small_mr: SmallSeries, tmp_path: Path) -> None:
    source = sort_by_position(small_mr.datasets)
    label_map = _truth_label_map(small_mr)
    assert set(np.unique(label_map)) == {0, 1, 2}
    seg = build_seg(
        source,
        label_map,
        {1: "tumour", 2: "bone"},
        algorithm_type="MANUAL",
        series_description="Label (final)",
        content_description="label final",
        author="Doe^Jane",
    )
    assert [item.SegmentLabel for item in seg.SegmentSequence] == ["tumour", "bone"]
    coded = [
        (
            item.SegmentedPropertyTypeCodeSequence[0].CodeValue,
            item.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator,
        )
        for item in seg.SegmentSequence
    ]
    assert coded == [("108369006", "SCT"), ("272673000", "SCT")]  # Neoplasm, Bone
    assert str(seg.ContentCreatorName) == "Doe^Jane"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source[0].SeriesInstanceUID
    assert seg.FrameOfReferenceUID == source[0].FrameOfReferenceUID
    assert np.array_equal(seg_label_map(seg, source), label_map)
    seg.save_as(tmp_path / "seg.dcm")
    assert dciodvfy_errors(tmp_path / "seg.dcm") == []


def test_an_automatic_seg_names_its_algorithm(small_mr: SmallSeries) -> None:
    source = sort_by_position(small_mr.datasets)
    seg = build_seg(
        source,
        _truth_label_map(small_mr),
        {},
        algorithm_type="AUTOMATIC",
        series_description="Prediction",
        content_description="prediction",
        algorithm_name="osteosarcoma_mr",
        algorithm_version="1.0",
    )
    segment = seg.SegmentSequence[0]
    assert segment.SegmentAlgorithmType == "AUTOMATIC"
    assert segment.SegmentAlgorithmName == "osteosarcoma_mr"
    assert not seg.ContentCreatorName  # type 2: present, empty when no person made it


def test_empty_masks_and_unknown_algorithm_types_are_refused(small_mr: SmallSeries) -> None:
    source = sort_by_position(small_mr.datasets)
    empty = np.zeros((12, 64, 64), np.uint8)
    with pytest.raises(InvalidInput, match="empty"):
        build_seg(source, empty, {}, algorithm_type="MANUAL", series_description="", content_description="")
    with pytest.raises(InvalidInput, match="algorithm type"):
        build_seg(source, empty + 1, {}, algorithm_type="GUESSED", series_description="", content_description="")


def test_label_files_in_nifti_and_nrrd_land_on_the_series_grid(small_mr: SmallSeries, tmp_path: Path) -> None:
    grid = grid_from_datasets(small_mr.datasets)
    label_map = _truth_label_map(small_mr)
    assert np.array_equal(read_label_file(small_mr.patient.truth["tumour"], grid), (label_map == 1).astype(np.uint16))

    lps = np.linalg.inv(LPS_TO_RAS) @ grid.affine
    path = tmp_path / "label.nrrd"
    header = {"space": "left-posterior-superior", "space directions": lps[:3, :3].T, "space origin": lps[:3, 3]}
    nrrd.write(str(path), label_map.transpose(2, 1, 0), header)
    assert np.array_equal(read_label_file(path, grid), label_map)


@pytest.mark.parametrize("suffix", LABEL_FILE_SUFFIXES)
def test_written_label_files_read_back_on_the_series_grid(small_mr: SmallSeries, tmp_path: Path, suffix: str) -> None:
    grid = grid_from_datasets(small_mr.datasets)
    label_map = _truth_label_map(small_mr)
    path = write_label_file(label_map, grid, tmp_path / f"answer{suffix}")
    assert np.array_equal(read_label_file(path, grid), label_map)
    if suffix == ".nii.gz":  # a standard gzip stream: what any client's zlib reads
        image = nib.Nifti1Image.from_bytes(gzip.decompress(path.read_bytes()))
        assert np.array_equal(np.asanyarray(image.dataobj), label_map.transpose(2, 1, 0))
        assert np.allclose(image.affine, grid.affine)


def test_label_files_off_the_grid_are_refused_naming_the_difference(small_mr: SmallSeries, tmp_path: Path) -> None:
    grid = grid_from_datasets(small_mr.datasets)
    data = np.zeros((64, 64, 12), np.uint8)
    data[30, 30, 5] = 1

    wrong_shape = tmp_path / "shape.nii.gz"
    nib.save(nib.Nifti1Image(data[:, :, :10], grid.affine), str(wrong_shape))
    with pytest.raises(InvalidInput, match="shape"):
        read_label_file(wrong_shape, grid)

    shifted = grid.affine.copy()
    shifted[0, 3] += 5.0
    moved = tmp_path / "moved.nii.gz"
    nib.save(nib.Nifti1Image(data, shifted), str(moved))
    with pytest.raises(InvalidInput, match=r"5\.000 mm"):
        read_label_file(moved, grid)

    fractional = tmp_path / "fractional.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.float32) * 0.5, grid.affine), str(fractional))
    with pytest.raises(InvalidInput, match="whole segment numbers"):
        read_label_file(fractional, grid)

    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(InvalidInput, match="cannot be read"):
        read_label_file(garbage, grid)
