"""Inter-expert agreement: overlap and distance between two raters' masks, and reliability of categorical scores.

Masks: Dice and the 95th-percentile Hausdorff distance come from MONAI's metrics (the ones MONAI Label's scoring
uses), the distance in millimetres through the grid's spacing. Scores: Cohen's kappa per pair of raters
(scikit-learn; quadratic weights for ordinal scales), Fleiss' kappa on the items every rater scored, and
Krippendorff's alpha on all items (the ``krippendorff`` package), which copes with missing ratings.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import krippendorff
import numpy as np
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance
from sklearn.metrics import cohen_kappa_score

__all__ = [
    "MaskAgreement",
    "PairKappa",
    "ScoreAgreement",
    "cohen_kappas",
    "fleiss_kappa",
    "krippendorff_alpha",
    "mask_agreement",
    "score_agreement",
]


# -- masks ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MaskAgreement:
    """Two masks of one segment. ``hd95_mm`` is None when a mask is empty (no surface to measure from).

    The volume difference is ``a - b``; its percentage is relative to the mean of both volumes, since neither
    rater is the reference.
    """

    dice: float
    hd95_mm: float | None
    volume_a_ml: float
    volume_b_ml: float
    volume_difference_ml: float
    volume_difference_percent: float | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _one_hot(mask: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]  # batch, channel, space


def mask_agreement(mask_a: np.ndarray, mask_b: np.ndarray, spacing_mm: Sequence[float]) -> MaskAgreement:
    """Agreement of two boolean masks on the same grid; ``spacing_mm`` gives one spacing per array axis."""
    if mask_a.shape != mask_b.shape:
        raise ValueError(f"masks differ in shape: {mask_a.shape} and {mask_b.shape}")
    if len(spacing_mm) != mask_a.ndim:
        raise ValueError(f"{len(spacing_mm)} spacings for a {mask_a.ndim}-dimensional mask")
    a, b = mask_a.astype(bool), mask_b.astype(bool)
    voxel_ml = float(np.prod(spacing_mm)) / 1000.0
    volume_a, volume_b = float(a.sum()) * voxel_ml, float(b.sum()) * voxel_ml
    mean_volume = (volume_a + volume_b) / 2
    difference = volume_a - volume_b
    percent = 100.0 * difference / mean_volume if mean_volume > 0 else None
    if not a.any() or not b.any():  # MONAI answers nan/inf here: say what it means instead
        dice, hd95 = (1.0 if not a.any() and not b.any() else 0.0), None
    else:
        with warnings.catch_warnings():  # MONAI's deprecation notices about its own internals
            warnings.simplefilter("ignore")
            dice = float(compute_dice(_one_hot(a), _one_hot(b), include_background=True).item())
            hd95 = float(
                compute_hausdorff_distance(
                    _one_hot(a), _one_hot(b), include_background=True, percentile=95, spacing=list(spacing_mm)
                ).item()
            )
    return MaskAgreement(dice, hd95, volume_a, volume_b, difference, percent)


# -- scores -----------------------------------------------------------------------------------------------------
# ratings[rater][item] = value; values of categorical scales are category indices (their order, for ordinal ones).
Ratings = Mapping[str, Mapping[Any, float]]


@dataclass(frozen=True)
class PairKappa:
    rater_a: str
    rater_b: str
    items: int  # items both scored
    kappa: float | None  # None when undefined (too few items, or no variation to agree on)


def _defined(value: float) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else float(value)


def cohen_kappas(ratings: Ratings, categories: Sequence[float], ordinal: bool) -> list[PairKappa]:
    """Cohen's kappa of each pair of raters on the items both scored (quadratic weights when ``ordinal``).

    The full list of ``categories`` is given to scikit-learn: quadratic weights then follow the scale's own
    distances, not those between the categories that happen to be used.
    """
    pairs = []
    for rater_a, rater_b in itertools.combinations(sorted(ratings), 2):
        common = sorted(set(ratings[rater_a]) & set(ratings[rater_b]), key=str)
        kappa = None
        if len(common) >= 2:
            with warnings.catch_warnings():  # 0/0 when both raters give one constant: reported as undefined
                warnings.simplefilter("ignore")
                kappa = _defined(
                    cohen_kappa_score(
                        [ratings[rater_a][item] for item in common],
                        [ratings[rater_b][item] for item in common],
                        labels=list(categories),
                        weights="quadratic" if ordinal else None,
                    )
                )
        pairs.append(PairKappa(rater_a, rater_b, len(common), kappa))
    return pairs


def fleiss_kappa(table: np.ndarray) -> float | None:
    """Fleiss' kappa of an items x categories table of counts, every item rated by the same number of raters.

    Written here because its usual home, statsmodels, is not a dependency of the platform (and these few lines
    are the textbook formula: Fleiss, Psychological Bulletin 1971).
    """
    counts = np.asarray(table, dtype=float)
    if counts.ndim != 2 or counts.shape[0] == 0:
        return None
    raters = counts.sum(axis=1)
    if raters[0] < 2 or not np.all(raters == raters[0]):
        return None
    n = raters[0]
    per_item = (np.square(counts).sum(axis=1) - n) / (n * (n - 1))
    shares = counts.sum(axis=0) / counts.sum()
    observed, expected = per_item.mean(), float(np.square(shares).sum())
    if math.isclose(expected, 1.0):
        return None  # every rating in one category: chance agreement is total, kappa undefined
    return float((observed - expected) / (1 - expected))


def _complete_items(ratings: Ratings) -> list[Hashable]:
    raters = list(ratings)
    if not raters:
        return []
    shared = set.intersection(*(set(ratings[rater]) for rater in raters))
    return sorted(shared, key=str)


def fleiss_on_complete_items(ratings: Ratings, categories: Sequence[float]) -> tuple[float | None, int]:
    """Fleiss' kappa on the items every rater scored, and how many such items there were."""
    items = _complete_items(ratings)
    if len(ratings) < 2 or not items:
        return None, len(items)
    index = {category: column for column, category in enumerate(categories)}
    table = np.zeros((len(items), len(categories)))
    for row, item in enumerate(items):
        for rater in ratings:
            table[row, index[ratings[rater][item]]] += 1
    return fleiss_kappa(table), len(items)


def krippendorff_alpha(ratings: Ratings, level: str, categories: Sequence[float] | None = None) -> float | None:
    """Krippendorff's alpha on every item (missing ratings allowed); ``level``: nominal, ordinal or interval."""
    items = sorted({item for by_item in ratings.values() for item in by_item}, key=str)
    if len(ratings) < 2 or not items:
        return None
    data = np.array([[ratings[rater].get(item, np.nan) for item in items] for rater in sorted(ratings)], dtype=float)
    if np.unique(data[~np.isnan(data)]).size < 2 and categories is None:
        return None  # one value throughout: nothing to disagree on, alpha undefined
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = krippendorff.alpha(
                reliability_data=data,
                level_of_measurement=level,  # type: ignore[arg-type]
                value_domain=list(categories) if categories is not None else None,
            )
    except (ValueError, ZeroDivisionError):  # fewer than two pairable values
        return None
    return _defined(value)


@dataclass(frozen=True)
class ScoreAgreement:
    raters: list[str]
    items: int
    items_scored_by_all: int
    cohen: list[PairKappa]
    cohen_weights: str | None
    fleiss_kappa: float | None
    krippendorff_alpha: float | None
    krippendorff_level: str


def score_agreement(ratings: Ratings, kind: str, categories: Sequence[float] | None) -> ScoreAgreement:
    """Every statistic for one score type; ``kind`` is ordinal, nominal or numeric (kappas need categories)."""
    ordinal = kind == "ordinal"
    level = {"ordinal": "ordinal", "nominal": "nominal"}.get(kind, "interval")
    items = {item for by_item in ratings.values() for item in by_item}
    if categories is None:  # numeric: kappa compares categories, so only alpha (interval) applies
        cohen = [PairKappa(a, b, len(set(ratings[a]) & set(ratings[b])), None) for a, b in _pairs(ratings)]
        fleiss, complete = None, len(_complete_items(ratings))
    else:
        cohen = cohen_kappas(ratings, categories, ordinal)
        fleiss, complete = fleiss_on_complete_items(ratings, categories)
    return ScoreAgreement(
        raters=sorted(ratings),
        items=len(items),
        items_scored_by_all=complete,
        cohen=cohen,
        cohen_weights=("quadratic" if ordinal else None) if categories is not None else None,
        fleiss_kappa=fleiss,
        krippendorff_alpha=krippendorff_alpha(ratings, level, categories),
        krippendorff_level=level,
    )


def _pairs(ratings: Ratings) -> list[tuple[str, str]]:
    return list(itertools.combinations(sorted(ratings), 2))
