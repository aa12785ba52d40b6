"""NIfTI volumes written as CT/MR series: read back by SimpleITK (ITK's own DICOM reader) to the NIfTI's affine
within 1e-3 mm and to its values; the volumes DICOM cannot hold exactly are refused with a reason."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from awesomme.dicom.deidentify import encode
from awesomme.dicom.nifti_series import NiftiRefused, SeriesAttributes, read_nifti, series_from_nifti

MAX_VOXELS = 10**7


def _oblique(spacing: tuple[float, float, float], degrees: float, flip_x: bool = False) -> np.ndarray:
    theta = np.deg2rad(degrees)
    rotation = np.array([[1, 0, 0], [0, np.cos(theta), -np.sin(theta)], [0, np.sin(theta), np.cos(theta)]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(spacing)
    if flip_x:
        affine[0, :3] *= -1
    affine[:3, 3] = [12.5, -40.25, 80.0]
    return affine


def _nifti(data: np.ndarray, affine: np.ndarray, gz: bool = False) -> bytes:
    image = nib.Nifti1Image(data, affine)
    image.set_qform(affine, 1)
    image.set_sform(affine, 1)
    raw = image.to_bytes()
    return gzip.compress(raw) if gz else raw


def _attributes(modality: str) -> SeriesAttributes:
    return SeriesAttributes(modality, "PSEUDO-1", "2.25.1", "2.25.2", "2.25.3", "volume.nii")


def _write(tmp_path: Path, data: bytes, modality: str) -> tuple[nib.Nifti1Image, list[Path]]:
    image = read_nifti(data, MAX_VOXELS)
    paths = []
    for index, dataset in enumerate(series_from_nifti(image, _attributes(modality))):
        path = tmp_path / f"{index:04d}.dcm"
        path.write_bytes(encode(dataset))
        paths.append(path)
    return image, paths


def _read_back(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(voxel-to-LPS affine, array [i, j, k]) as SimpleITK reads the series."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader().GetGDCMSeriesFileNames(str(paths[0].parent)))
    volume = reader.Execute()
    direction = np.array(volume.GetDirection()).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction @ np.diag(volume.GetSpacing())
    affine[:3, 3] = volume.GetOrigin()
    return affine, np.transpose(sitk.GetArrayFromImage(volume), (2, 1, 0))


def _expected_lps(image: nib.Nifti1Image, depth: int, read_affine: np.ndarray) -> tuple[np.ndarray, bool]:
    """The NIfTI affine in LPS; with k reversed when the reader stacked the slices the other way."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ image.affine
    if float(lps[:3, 2] @ read_affine[:3, 2]) < 0:
        flipped = lps.copy()
        flipped[:3, 2] *= -1
        flipped[:3, 3] = (lps @ [0, 0, depth - 1, 1])[:3]
        return flipped, True
    return lps, False


@pytest.mark.parametrize(("flip_x", "gz"), [(False, False), (True, True)], ids=["oblique", "left-right-flipped"])
def test_ct_series_reads_back_to_the_nifti_affine_and_the_same_integers(tmp_path: Path, flip_x: bool, gz: bool):
    rng = np.random.default_rng(7)
    data = rng.integers(-1024, 3000, size=(24, 20, 6)).astype(np.int16)
    image, paths = _write(tmp_path, _nifti(data, _oblique((0.8, 0.7, 3.0), 12.0, flip_x), gz), "CT")
    affine, values = _read_back(paths)
    expected, reversed_k = _expected_lps(image, data.shape[2], affine)
    assert np.abs(affine - expected).max() < 1e-3
    assert np.array_equal(values, data[:, :, ::-1] if reversed_k else data)


def test_float_mr_series_keeps_geometry_and_values_within_half_a_rescale_step(tmp_path: Path):
    rng = np.random.default_rng(11)
    data = rng.gamma(2.0, 150.0, size=(16, 18, 5)).astype(np.float32)
    image, paths = _write(tmp_path, _nifti(data, _oblique((1.1, 0.9, 4.0), -20.0)), "MR")
    affine, values = _read_back(paths)
    expected, reversed_k = _expected_lps(image, data.shape[2], affine)
    assert np.abs(affine - expected).max() < 1e-3
    slope = float(pydicom.dcmread(paths[0]).RescaleSlope)
    truth = data[:, :, ::-1] if reversed_k else data
    assert np.abs(values - truth).max() <= slope / 2 + 1e-3


def test_the_series_says_it_was_converted_from_nifti(tmp_path: Path):
    data = np.zeros((4, 4, 2), np.int16)
    _, paths = _write(tmp_path, _nifti(data, np.eye(4)), "CT")
    dataset = pydicom.dcmread(paths[0])
    assert list(dataset.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert "NIfTI" in dataset.DerivationDescription
    assert dataset.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dicom3tools' dciodvfy is not installed")
@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_dciodvfy_finds_no_error_in_a_converted_instance(tmp_path: Path, modality: str):
    data = np.arange(4 * 5 * 3, dtype=np.int16).reshape(4, 5, 3)
    _, paths = _write(tmp_path, _nifti(data, _oblique((1.0, 1.0, 2.0), 8.0)), modality)
    report = subprocess.run(["dciodvfy", str(paths[0])], capture_output=True, text=True, check=False)
    errors = [line for line in (report.stdout + report.stderr).splitlines() if line.startswith("Error")]
    assert errors == []


def test_a_sheared_affine_is_refused():
    affine = np.eye(4)
    affine[0, 1] = 0.3
    image = nib.Nifti1Image(np.zeros((3, 3, 3), np.int16), affine)
    image.set_qform(None)  # a qform cannot hold a shear: the sform alone says it
    image.set_sform(affine, 1)
    with pytest.raises(NiftiRefused, match="sheared"):
        series_from_nifti(read_nifti(image.to_bytes(), MAX_VOXELS), _attributes("CT"))


def test_a_4d_volume_is_refused():
    with pytest.raises(NiftiRefused, match="4-D"):
        read_nifti(_nifti(np.zeros((3, 3, 3, 2), np.int16), np.eye(4)), MAX_VOXELS)


def test_disagreeing_sform_and_qform_are_refused():
    image = nib.Nifti1Image(np.zeros((3, 3, 3), np.int16), np.eye(4))
    shifted = np.eye(4)
    shifted[:3, 3] = [5.0, 0.0, 0.0]
    image.set_qform(np.eye(4), 1)
    image.set_sform(shifted, 1)
    with pytest.raises(NiftiRefused, match="sform and qform disagree"):
        series_from_nifti(read_nifti(image.to_bytes(), MAX_VOXELS), _attributes("CT"))


def test_a_ct_with_non_integer_values_is_refused():
    data = np.full((3, 3, 2), 10.5, np.float32)
    with pytest.raises(NiftiRefused, match="non-integer"):
        series_from_nifti(read_nifti(_nifti(data, np.eye(4)), MAX_VOXELS), _attributes("CT"))


def test_a_file_that_is_not_nifti_is_refused():
    with pytest.raises(NiftiRefused, match="not a NIfTI"):
        read_nifti(b"not a nifti file at all" * 30, MAX_VOXELS)


def test_a_volume_above_the_voxel_cap_is_refused_before_its_data_is_read():
    with pytest.raises(NiftiRefused, match="voxels"):
        read_nifti(_nifti(np.zeros((10, 10, 10), np.int16), np.eye(4)), 999)


def test_a_truncated_nifti_is_refused_with_a_reason():
    data = _nifti(np.arange(6 * 6 * 4, dtype=np.int16).reshape(6, 6, 4), np.eye(4))
    with pytest.raises(NiftiRefused, match="cannot be read"):
        series_from_nifti(read_nifti(data[: len(data) - 100], MAX_VOXELS), _attributes("CT"))
