"""Slice interpolation: a phantom tumour labelled on every 2nd or 4th slice comes back close to its truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skimage.draw import disk

from awesomme.analysis.interpolation import dice, interpolate_slices, segmented_slices
from awesomme.phantoms import generate_patient
from tests.seg_files import truth_mask


def _sparse(truth: np.ndarray, step: int) -> np.ndarray:
    """Every ``step``-th segmented slice of ``truth``, its first and last always included."""
    labelled = segmented_slices(truth)
    kept = set(labelled[::step]) | {labelled[0], labelled[-1]}
    sparse = np.zeros_like(truth)
    for k in kept:
        sparse[k] = truth[k]
    return sparse


def test_a_growing_disc_is_filled_in_between() -> None:
    cone = np.zeros((9, 64, 64), bool)
    for k in range(9):
        cone[k][disk((32, 32), 4 + 2 * k)] = True
    filled = interpolate_slices(_sparse(cone, 4), (1.0, 1.0))
    assert segmented_slices(filled) == list(range(9))
    assert dice(filled, cone) > 0.97
    assert np.array_equal(filled[[0, 4, 8]], cone[[0, 4, 8]])  # labelled slices are kept as drawn


def test_nothing_is_added_outside_the_labelled_range_or_without_gaps() -> None:
    mask = np.zeros((6, 16, 16), bool)
    mask[2:4, 4:8, 4:8] = True
    assert np.array_equal(interpolate_slices(mask, (1.0, 1.0)), mask)


@pytest.mark.parametrize(("shape", "step", "least"), [((60, 160, 160), 2, 0.95), ((60, 160, 160), 4, 0.90)])
def test_a_phantom_tumour_comes_back_with_a_high_dice(
    tmp_path: Path, shape: tuple[int, int, int], step: int, least: float
) -> None:
    patient = generate_patient("osteosarcoma-mr", 101, tmp_path, shape=shape)
    truth = truth_mask(patient.truth["tumour"])
    sparse = _sparse(truth, step)
    filled = interpolate_slices(sparse, patient.spacing[1:])
    print(f"one slice in {step}: Dice {dice(sparse, truth):.3f} as labelled, {dice(filled, truth):.3f} interpolated")
    assert dice(filled, truth) >= least
