"""Label files (NIfTI, NRRD) read onto a series' grid and written back in it."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest

from awesomme.core.errors import InvalidInput
from awesomme.dicom.label_files import LABEL_FILE_SUFFIXES, read_label_file, write_label_file
from awesomme.dicom.volumes import LPS_TO_RAS, grid_from_datasets
from tests.unit.conftest import SmallSeries


def test_label_files_in_nifti_and_nrrd_land_on_the_series_grid(small_mr: SmallSeries, tmp_path: Path) -> None:
    grid = grid_from_datasets(small_mr.datasets)
    label_map = small_mr.truth_label_map()
    assert np.array_equal(read_label_file(small_mr.patient.truth["tumour"], grid), (label_map == 1).astype(np.uint16))

    lps = np.linalg.inv(LPS_TO_RAS) @ grid.affine
    path = tmp_path / "label.nrrd"
    header = {"space": "left-posterior-superior", "space directions": lps[:3, :3].T, "space origin": lps[:3, 3]}
    nrrd.write(str(path), label_map.transpose(2, 1, 0), header)
    assert np.array_equal(read_label_file(path, grid), label_map)


@pytest.mark.parametrize("suffix", LABEL_FILE_SUFFIXES)
def test_written_label_files_read_back_on_the_series_grid(small_mr: SmallSeries, tmp_path: Path, suffix: str) -> None:
    grid = grid_from_datasets(small_mr.datasets)
    label_map = small_mr.truth_label_map()
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
