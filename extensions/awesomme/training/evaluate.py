"""Held-out evaluation on phantoms with seeds >= 50000, on each series' own (default) voxel grid."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from scipy import ndimage

from awesomme.inference.config import SegmentationModelConfig
from awesomme.inference.predict import predict
from awesomme.phantoms import EVALUATION_SEED_START, Phantom, synthesize

__all__ = [
    "VALIDATION_SEED_START",
    "NoduleMetrics",
    "SegmentationMetrics",
    "dice",
    "evaluate_nodules",
    "evaluate_segmentation",
    "held_out_patients",
    "nodule_metrics_for_patient",
]

logger = logging.getLogger(__name__)
SOLID_TYPES = ("solid", "part-solid")
STRUCTURE = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity for connected components
VALIDATION_SEED_START = 40000  # seeds 40000-49999: tuning and model selection (never trained on)


def dice(prediction: NDArray[Any], truth: NDArray[Any]) -> float:
    """Dice of two masks (1.0 if both are empty)."""
    p, t = np.asarray(prediction) > 0, np.asarray(truth) > 0
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total


def held_out_patients(
    kind: str, structure: str, count: int, start: int = EVALUATION_SEED_START, max_seeds: int = 200
) -> Iterator[Phantom]:
    """Held-out phantoms (default grid) from seed ``start`` up, skipping those without ``structure``, ``count``
    of them.  ``start`` must be an evaluation seed (>= 50000)."""
    if start < EVALUATION_SEED_START:
        raise ValueError(f"held-out seeds start at {EVALUATION_SEED_START}")
    found = 0
    for seed in range(start, start + max_seeds):
        phantom = synthesize(kind, seed)
        if not phantom.truth[structure].any():
            continue
        yield phantom
        found += 1
        if found == count:
            return
    raise RuntimeError(f"fewer than {count} {kind} patients with {structure} in {max_seeds} seeds")


@dataclass
class SegmentationMetrics:
    seeds: list[int] = field(default_factory=list)
    dice: list[float] = field(default_factory=list)
    predict_s: list[float] = field(default_factory=list)
    shapes: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def mean_dice(self) -> float:
        return float(np.mean(self.dice)) if self.dice else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "held_out_seeds": self.seeds,
            "n_patients": len(self.seeds),
            "dice_mean": round(self.mean_dice, 4),
            "dice_min": round(float(np.min(self.dice)), 4) if self.dice else None,
            "dice_per_patient": [round(d, 4) for d in self.dice],
        }


def evaluate_segmentation(
    network: torch.nn.Module, config: SegmentationModelConfig, kind: str, structure: str, count: int
) -> SegmentationMetrics:
    """Dice of label 1 against ``structure`` on ``count`` held-out patients in which it is present."""
    metrics = SegmentationMetrics()
    for phantom in held_out_patients(kind, structure, count):
        start = time.perf_counter()
        prediction = predict(network, phantom.volume, config)
        metrics.predict_s.append(time.perf_counter() - start)
        metrics.seeds.append(phantom.seed)
        metrics.shapes.append(tuple(int(n) for n in phantom.volume.shape))  # type: ignore[arg-type]
        metrics.dice.append(dice(prediction.label_map == 1, phantom.truth[structure]))
        logger.info("seed %d %s: Dice %.4f (%.1f s)", phantom.seed, structure, metrics.dice[-1], metrics.predict_s[-1])
    return metrics


@dataclass
class NoduleMetrics:
    """Per-nodule results of a set of patients (solid and part-solid nodules only, as in the ``nodule`` mask)."""

    seeds: list[int] = field(default_factory=list)
    patient_dice: list[float] = field(default_factory=list)  # patients with a nodule present
    nodule_diameter_mm: list[float] = field(default_factory=list)
    nodule_detected: list[bool] = field(default_factory=list)
    nodule_dice: list[float] = field(default_factory=list)
    false_positives: list[int] = field(default_factory=list)  # per patient
    predict_s: list[float] = field(default_factory=list)

    def _select(self, low: float, high: float) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
        d = np.array(self.nodule_diameter_mm)
        chosen = (d >= low) & (d < high)
        return np.array(self.nodule_detected)[chosen], np.array(self.nodule_dice)[chosen]

    def dice_at_least(self, diameter_mm: float) -> float:
        return float(np.mean(self._select(diameter_mm, np.inf)[1])) if self.count(diameter_mm) else float("nan")

    def sensitivity(self, low: float, high: float = np.inf) -> float:
        detected = self._select(low, high)[0]
        return float(np.mean(detected)) if len(detected) else float("nan")

    def count(self, low: float, high: float = np.inf) -> int:
        return len(self._select(low, high)[0])

    @property
    def fp_per_patient(self) -> float:
        return float(np.mean(self.false_positives)) if self.false_positives else float("nan")

    def summary(self) -> dict[str, Any]:
        def r(value: float) -> float | None:
            return None if np.isnan(value) else round(value, 4)

        return {
            "held_out_seeds": self.seeds,
            "n_patients": len(self.seeds),
            "n_patients_with_nodule": len(self.patient_dice),
            "dice_nodules_ge_8mm": r(self.dice_at_least(8.0)),
            "n_nodules_ge_8mm": self.count(8.0),
            "dice_per_patient_mean": r(float(np.mean(self.patient_dice))) if self.patient_dice else None,
            "sensitivity_ge_6mm": r(self.sensitivity(6.0)),
            "n_nodules_ge_6mm": self.count(6.0),
            "false_positives_per_patient": r(self.fp_per_patient),
            "sensitivity_lt_6mm": r(self.sensitivity(0.0, 6.0)),
            "n_nodules_lt_6mm": self.count(0.0, 6.0),
            "dice_nodules_lt_6mm": r(float(np.mean(self._select(0.0, 6.0)[1]))) if self.count(0.0, 6.0) else None,
        }


def _component_at(components: NDArray[np.int32], centre: list[int]) -> int:
    """The truth component at a nodule's centre voxel (or the most common one in a small box around it)."""
    z, y, x = (int(c) for c in centre)
    if components[z, y, x]:
        return int(components[z, y, x])
    box = components[max(z - 1, 0) : z + 2, max(y - 4, 0) : y + 5, max(x - 4, 0) : x + 5]
    values = box[box > 0]
    return int(np.bincount(values).argmax()) if values.size else 0


def nodule_metrics_for_patient(
    prediction: NDArray[Any], phantom: Phantom
) -> tuple[list[tuple[float, bool, float]], int]:
    """Per solid/part-solid nodule (diameter mm, detected, Dice) and the number of false-positive components.

    A nodule is detected when a predicted component overlaps it; its Dice is computed between the nodule and
    the union of the predicted components overlapping it.  A false positive is a predicted component that
    overlaps no truth nodule.
    """
    truth = phantom.truth["nodule"] > 0
    predicted = np.asarray(prediction) > 0
    truth_components, _ = ndimage.label(truth, structure=STRUCTURE)
    predicted_components, n_predicted = ndimage.label(predicted, structure=STRUCTURE)
    results: list[tuple[float, bool, float]] = []
    for nodule in phantom.clinical.get("nodules", []):
        if nodule["type"] not in SOLID_TYPES:
            continue
        component = _component_at(truth_components, nodule["centre_voxel"])
        if component == 0:
            logger.warning("seed %d: nodule %s has no voxels in the truth mask", phantom.seed, nodule.get("id"))
            continue
        region = truth_components == component
        touching = np.unique(predicted_components[region])
        touching = touching[touching > 0]
        matched = np.isin(predicted_components, touching) if touching.size else np.zeros_like(region)
        results.append((float(nodule["diameter_mm"]), bool(touching.size), dice(matched, region)))
    overlapping = np.unique(predicted_components[truth])
    false_positives = n_predicted - int((overlapping > 0).sum())
    return results, false_positives


def evaluate_nodules(
    network: torch.nn.Module, config: SegmentationModelConfig, count: int, start: int = EVALUATION_SEED_START
) -> NoduleMetrics:
    """Nodule metrics on the first ``count`` chest CTs from seed ``start`` that have a solid or part-solid
    nodule; false positives are counted on the patients without a nodule between them too.

    ``start`` is the held-out 50000 for the figures we publish, or a validation seed (40000-49999) for tuning.
    """
    if start < VALIDATION_SEED_START:
        raise ValueError(f"evaluation seeds start at {VALIDATION_SEED_START} (validation) or {EVALUATION_SEED_START}")
    metrics = NoduleMetrics()
    with_nodule = 0
    for seed in range(start, start + 10 * count):
        phantom = synthesize("chest-ct", seed)
        began = time.perf_counter()
        label_map = predict(network, phantom.volume, config).label_map == 1
        metrics.predict_s.append(time.perf_counter() - began)
        metrics.seeds.append(seed)
        nodules, false_positives = nodule_metrics_for_patient(label_map, phantom)
        metrics.false_positives.append(false_positives)
        for diameter, detected, nodule_dice in nodules:
            metrics.nodule_diameter_mm.append(diameter)
            metrics.nodule_detected.append(detected)
            metrics.nodule_dice.append(nodule_dice)
        if phantom.truth["nodule"].any():
            metrics.patient_dice.append(dice(label_map, phantom.truth["nodule"]))
            with_nodule += 1
        logger.info("seed %d: nodules %s, FP %d (%.1f s)", seed, nodules, false_positives, metrics.predict_s[-1])
        if with_nodule == count:
            break
    return metrics
