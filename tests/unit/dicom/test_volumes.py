from __future__ import annotations

import copy
import random

import nibabel as nib
import numpy as np
import pytest

from awesomme.core.errors import InvalidInput
from awesomme.dicom.volumes import grid_from_datasets, sort_by_position, volume_from_datasets
from tests.unit.conftest import SmallSeries


def test_shuffled_instances_decode_to_the_generated_volume_and_affine(small_ct: SmallSeries) -> None:
    shuffled = list(small_ct.datasets)
    random.Random(3).shuffle(shuffled)
    volume = volume_from_datasets(shuffled)
    truth = nib.load(str(small_ct.patient.truth["lung"]))
    assert volume.array.shape == (12, 64, 64) == truth.shape[::-1]
    assert np.array_equal(volume.affine, small_ct.patient.affine)
    assert volume.array.dtype == np.int16  # CT rescaled to Hounsfield units, still integers
    ordered = sort_by_position(small_ct.datasets)
    expected = np.stack([ds.pixel_array.astype(np.int32) + int(ds.RescaleIntercept) for ds in ordered])
    assert np.array_equal(volume.array, expected)


def test_mr_keeps_its_stored_values(small_mr: SmallSeries) -> None:
    volume = volume_from_datasets(small_mr.datasets)
    ordered = sort_by_position(small_mr.datasets)
    assert np.array_equal(volume.array, np.stack([ds.pixel_array for ds in ordered]))
    assert volume.modality == "MR"


def test_a_missing_slice_is_refused(small_mr: SmallSeries) -> None:
    ordered = sort_by_position(small_mr.datasets)
    with pytest.raises(InvalidInput, match="evenly spaced"):
        volume_from_datasets(ordered[:5] + ordered[6:])


def test_instances_of_different_sizes_are_refused(small_mr: SmallSeries) -> None:
    odd = copy.deepcopy(small_mr.datasets[3])
    odd.Rows = 32
    with pytest.raises(InvalidInput, match="differ in size"):
        sort_by_position([*small_mr.datasets[:3], odd, *small_mr.datasets[4:]])


def test_an_empty_series_and_a_non_image_are_refused(small_mr: SmallSeries) -> None:
    with pytest.raises(InvalidInput, match="no instances"):
        sort_by_position([])
    flat = copy.deepcopy(small_mr.datasets[0])
    del flat.ImagePositionPatient
    with pytest.raises(InvalidInput, match="ImagePositionPatient"):
        sort_by_position([flat])


def test_fractional_rescale_gives_floats(small_ct: SmallSeries) -> None:
    scaled = [copy.deepcopy(ds) for ds in small_ct.datasets]
    for ds in scaled:
        ds.RescaleSlope = 0.5
    volume = volume_from_datasets(scaled)
    ordered = sort_by_position(small_ct.datasets)
    assert volume.array.dtype == np.float32
    assert np.allclose(volume.array[0], ordered[0].pixel_array * 0.5 + float(ordered[0].RescaleIntercept))


def test_grid_from_metadata_alone(small_ct: SmallSeries) -> None:
    metadata = [copy.deepcopy(ds) for ds in small_ct.datasets]
    for ds in metadata:
        del ds.PixelData
    grid = grid_from_datasets(metadata)
    assert grid.shape == (12, 64, 64)
    assert np.array_equal(grid.affine, small_ct.patient.affine)
    assert grid.spacing == pytest.approx(tuple(reversed(small_ct.patient.spacing)))
