"""``python -m awesomme.training.threshold_sweep``: the sweep that chose the shipped ``lung_nodule_ct`` threshold.

Each candidate threshold is applied to the shipped weights on the validation seeds the model's ``tuning`` names
(40000-40014: validation, never trained on and never the held-out 50000+ whose figures are published); the
threshold kept is the one with the most Dice on nodules of 8 mm or more among those with at most
``MAX_FALSE_POSITIVES`` false positives per patient, the fewer false positives on a tie (Dice compared at three
decimals, as the YAML reports it). The output lists every threshold's figures and the chosen one.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

import torch

from awesomme.inference.config import SegmentationModelConfig, load_config_file
from awesomme.inference.network import load_network
from awesomme.inference.predict import predict
from awesomme.phantoms import synthesize
from awesomme.training.evaluate import VALIDATION_SEED_START, NoduleMetrics, nodule_metrics_for_patient
from awesomme.training.train import CONFIG_DIR

__all__ = ["MAX_FALSE_POSITIVES", "SEEDS", "THRESHOLDS", "choose", "sweep"]

THRESHOLDS = (0.5, 0.4, 0.3, 0.2)
SEEDS = range(VALIDATION_SEED_START, VALIDATION_SEED_START + 15)  # 40000-40014
MAX_FALSE_POSITIVES = 2.0  # per patient


def sweep(
    config: SegmentationModelConfig,
    network: torch.nn.Module,
    thresholds: Sequence[float] = THRESHOLDS,
    seeds: Sequence[int] = SEEDS,
) -> list[dict[str, Any]]:
    """Nodule figures of ``network`` served as ``config`` at each threshold on the validation ``seeds``."""
    if min(seeds) < VALIDATION_SEED_START or max(seeds) >= VALIDATION_SEED_START + 10000:
        raise ValueError(f"a threshold is tuned on validation seeds {VALIDATION_SEED_START}-49999 only")
    configs = {t: _with_threshold(config, t) for t in thresholds}
    metrics = {t: NoduleMetrics() for t in thresholds}
    for seed in seeds:
        phantom = synthesize("chest-ct", seed)
        for threshold, config in configs.items():
            label_map = predict(network, phantom.volume, config).label_map == 1
            nodules, false_positives = nodule_metrics_for_patient(label_map, phantom)
            found = metrics[threshold]
            found.seeds.append(seed)
            found.false_positives.append(false_positives)
            for diameter, detected, nodule_dice in nodules:
                found.nodule_diameter_mm.append(diameter)
                found.nodule_detected.append(detected)
                found.nodule_dice.append(nodule_dice)
    return [
        {
            "threshold": t,
            "dice_nodules_ge_8mm": round(metrics[t].dice_at_least(8.0), 3),
            "n_nodules_ge_8mm": metrics[t].count(8.0),
            "false_positives_per_patient": round(metrics[t].fp_per_patient, 2),
        }
        for t in thresholds
    ]


def choose(rows: Sequence[dict[str, Any]], max_false_positives: float = MAX_FALSE_POSITIVES) -> float:
    """The threshold with the most Dice on nodules >= 8 mm within the false-positive bound; fewer false positives,
    then the higher threshold, on a tie."""
    allowed = [row for row in rows if row["false_positives_per_patient"] <= max_false_positives]
    if not allowed:
        raise ValueError(f"no threshold keeps false positives at or under {max_false_positives} per patient")
    best = max(
        allowed,
        key=lambda row: (round(row["dice_nodules_ge_8mm"], 3), -row["false_positives_per_patient"], row["threshold"]),
    )
    return float(best["threshold"])


def _with_threshold(config: SegmentationModelConfig, threshold: float) -> SegmentationModelConfig:
    inference = config.inference.model_copy(update={"threshold": threshold})
    return config.model_copy(update={"inference": inference})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m awesomme.training.threshold_sweep", description=__doc__)
    parser.add_argument("--model", default="lung_nodule_ct", choices=["lung_nodule_ct"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = load_config_file(CONFIG_DIR / f"{args.model}.yaml")  # the shipped weights, checked by their sha256
    if config is None:
        parser.error(f"{args.model} has no shipped YAML")
    rows = sweep(config, load_network(config))
    print(json.dumps({"rows": rows, "chosen": choose(rows)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
