"""Agreement numbers against values computed by hand on small masks and score tables (the working is in comments)."""

from __future__ import annotations

import numpy as np
import pytest

from awesomme.analysis.agreement import (
    cohen_kappas,
    fleiss_kappa,
    fleiss_on_complete_items,
    krippendorff_alpha,
    mask_agreement,
    score_agreement,
)


def _box(shape=(6, 6, 6)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[1:5, 1:5, 1:5] = True  # a 4x4x4 cube: 64 voxels, 56 of them on its surface
    return mask


# -- masks ------------------------------------------------------------------------------------------------------
def test_identical_masks_agree_fully() -> None:
    result = mask_agreement(_box(), _box(), (2.0, 0.5, 0.5))
    assert result.dice == pytest.approx(1.0)
    assert result.hd95_mm == pytest.approx(0.0)
    assert result.volume_a_ml == pytest.approx(64 * 0.5 / 1000)  # 64 voxels of 2 x 0.5 x 0.5 mm
    assert result.volume_difference_ml == 0 and result.volume_difference_percent == 0


def test_cube_shifted_by_one_voxel_along_the_columns() -> None:
    a = _box()
    b = np.roll(a, 1, axis=2)
    # Overlap 4x4x3 = 48 voxels: Dice = 2*48 / (64+64) = 0.75.
    # Surface distances (spacing 1 mm across, 3 mm along the shift): the 16 voxels of a's first column face are
    # 3 mm from b's surface, the 4 inner voxels of its last column face 1 mm (b's side faces), the other 36 lie on
    # b's surface (0 mm); 16/56 = 29% of the distances are 3 mm, so the 95th percentile is 3 mm, both ways.
    result = mask_agreement(a, b, (1.0, 1.0, 3.0))
    assert result.dice == pytest.approx(0.75)
    assert result.hd95_mm == pytest.approx(3.0)
    # With 2 mm between slices and 1 mm across, the shift is 1 mm and every distance 0 or 1 mm.
    assert mask_agreement(a, b, (2.0, 1.0, 1.0)).hd95_mm == pytest.approx(1.0)


def test_single_voxels_apart_give_distance_in_millimetres_and_volume_differences() -> None:
    a = np.zeros((5, 4, 4), bool)
    b = np.zeros((5, 4, 4), bool)
    a[0, 1, 1] = True
    b[4, 1, 1] = True
    b[4, 1, 2] = True
    # Slices 2.5 mm apart: 4 slices = 10 mm to the nearer voxel of b; b's far voxel is sqrt(10^2 + 0.8^2) from a.
    result = mask_agreement(a, b, (2.5, 0.8, 0.8))
    assert result.dice == 0.0
    voxel_ml = 2.5 * 0.8 * 0.8 / 1000
    assert result.volume_a_ml == pytest.approx(voxel_ml) and result.volume_b_ml == pytest.approx(2 * voxel_ml)
    assert result.volume_difference_ml == pytest.approx(-voxel_ml)
    assert result.volume_difference_percent == pytest.approx(100 * -1 / 1.5)  # relative to the mean volume
    # Directed b->a: {10, sqrt(100.64)}, 95th percentile by linear interpolation = 10 + 0.95*(sqrt(100.64)-10).
    expected = 10 + 0.95 * (np.sqrt(100 + 0.64) - 10)
    assert result.hd95_mm == pytest.approx(expected, rel=1e-5)


def test_an_empty_mask_has_no_distance_and_zero_dice() -> None:
    result = mask_agreement(_box(), np.zeros((6, 6, 6), bool), (1.0, 1.0, 1.0))
    assert result.dice == 0.0 and result.hd95_mm is None
    assert result.volume_difference_percent == pytest.approx(200.0)
    with pytest.raises(ValueError):
        mask_agreement(_box(), np.zeros((6, 6, 5), bool), (1.0, 1.0, 1.0))


# -- scores -----------------------------------------------------------------------------------------------------
FOUR_ITEMS = {"ann": {1: 0, 2: 1, 3: 2, 4: 3}, "bob": {1: 0, 2: 1, 3: 2, 4: 2}}


def test_cohen_kappa_unweighted_for_nominal_scales() -> None:
    # po = 3/4; pe = .25*.25 + .25*.25 + .25*.5 + .25*0 = 1/4; kappa = (3/4 - 1/4) / (3/4) = 2/3.
    [pair] = cohen_kappas(FOUR_ITEMS, [0, 1, 2, 3], ordinal=False)
    assert (pair.rater_a, pair.rater_b, pair.items) == ("ann", "bob", 4)
    assert pair.kappa == pytest.approx(2 / 3)


def test_cohen_kappa_quadratic_weights_follow_the_whole_scale() -> None:
    # Weights (i-j)^2. Observed: one item off by one, sum w*O = 1/4. Expected: ann uniform over 0..3, bob
    # .25/.25/.5 on 0/1/2: sum w*E = .25 * (.25*14 + .25*6 + .5*6) = 2. kappa = 1 - (1/4)/2 = 0.875. Unused
    # categories of the mRS scale (4..6) add nothing to either sum.
    [pair] = cohen_kappas(FOUR_ITEMS, list(range(7)), ordinal=True)
    assert pair.kappa == pytest.approx(0.875)


THREE_RATERS = {"ann": {"x": 0, "y": 0, "z": 1}, "bob": {"x": 0, "y": 0, "z": 1}, "cat": {"x": 0, "y": 1, "z": 1}}


def test_fleiss_kappa_by_hand() -> None:
    # Items (3,0), (2,1), (0,3): P_i = 1, 1/3, 1; P = 7/9. p = (5/9, 4/9): Pe = 41/81. kappa = (7/9-41/81)/(40/81)
    # = 22/40 = 0.55.
    assert fleiss_kappa(np.array([[3, 0], [2, 1], [0, 3]])) == pytest.approx(0.55)
    assert fleiss_on_complete_items(THREE_RATERS, [0, 1]) == (pytest.approx(0.55), 3)
    assert fleiss_kappa(np.array([[2, 0], [2, 0]])) is None  # one category only: undefined
    assert fleiss_kappa(np.array([[2, 0], [1, 0]])) is None  # unequal numbers of raters


def test_fleiss_uses_only_items_every_rater_scored_and_krippendorff_all_of_them() -> None:
    ratings = {rater: dict(values) for rater, values in THREE_RATERS.items()}
    ratings["ann"]["w"] = 1  # only ann scored w
    assert fleiss_on_complete_items(ratings, [0, 1]) == (pytest.approx(0.55), 3)
    # Alpha: w has one rating, not pairable, so alpha is unchanged. Coincidences of x, y, z: o00 = 3+1, o01 = o10
    # = 1, o11 = 1+3 (each unit's pairs over m_u - 1 = 2); n = 9, n0 = 5, n1 = 4. Do = 2/9, De = 2*5*4/(9*8) =
    # 5/9: alpha = 1 - (2/9)/(5/9) = 0.6.
    assert krippendorff_alpha(ratings, "nominal", [0, 1]) == pytest.approx(0.6)


def test_interval_alpha_for_numeric_scores() -> None:
    # Values 1.5, 1.5 | 3, 3.5. Do = 2*0.25 / 4 = 0.125; De = 2*(0 + 2*2.25 + 2*4 + 0.25) / (4*3) = 2.125.
    ratings = {"ann": {"p": 1.5, "q": 3.0}, "bob": {"p": 1.5, "q": 3.5}}
    assert krippendorff_alpha(ratings, "interval") == pytest.approx(1 - 0.125 / 2.125)
    summary = score_agreement(ratings, "numeric", None)
    assert summary.krippendorff_level == "interval" and summary.krippendorff_alpha == pytest.approx(1 - 0.125 / 2.125)
    assert summary.cohen[0].kappa is None and summary.fleiss_kappa is None  # kappas need categories


def test_score_agreement_summary_and_undefined_cases() -> None:
    summary = score_agreement(THREE_RATERS, "nominal", [0, 1])
    assert summary.raters == ["ann", "bob", "cat"] and summary.items == 3 and summary.items_scored_by_all == 3
    assert [pair.kappa for pair in summary.cohen] == [pytest.approx(1.0), pytest.approx(0.4), pytest.approx(0.4)]
    assert summary.fleiss_kappa == pytest.approx(0.55) and summary.krippendorff_alpha == pytest.approx(0.6)
    constant = {"ann": {1: 2, 2: 2}, "bob": {1: 2, 2: 2}}
    same = score_agreement(constant, "ordinal", list(range(7)))
    assert same.cohen_weights == "quadratic"
    assert same.cohen[0].kappa is None and same.fleiss_kappa is None and same.krippendorff_alpha is None
    alone = score_agreement({"ann": {1: 2}}, "ordinal", list(range(7)))
    assert alone.cohen == [] and alone.fleiss_kappa is None and alone.krippendorff_alpha is None
