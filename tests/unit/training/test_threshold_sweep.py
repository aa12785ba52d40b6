"""The nodule threshold sweep that chose the shipped ``lung_nodule_ct`` threshold: its rule, on the figures the
YAML records, and a run of it on the shipped weights (validation seeds only)."""

from __future__ import annotations

import pytest

from awesomme.inference.config import load_config_file
from awesomme.inference.network import load_network
from awesomme.training.evaluate import VALIDATION_SEED_START
from awesomme.training.threshold_sweep import choose, sweep
from awesomme.training.train import CONFIG_DIR

# As the shipped YAML's ``tuning`` records them (seeds 40000-40014).
RECORDED = [
    {"threshold": 0.5, "dice_nodules_ge_8mm": 0.894, "false_positives_per_patient": 0.07},
    {"threshold": 0.4, "dice_nodules_ge_8mm": 0.897, "false_positives_per_patient": 0.07},
    {"threshold": 0.3, "dice_nodules_ge_8mm": 0.898, "false_positives_per_patient": 0.13},
    {"threshold": 0.2, "dice_nodules_ge_8mm": 0.898, "false_positives_per_patient": 0.20},
]


def test_the_rule_picks_the_shipped_threshold_from_the_recorded_figures() -> None:
    shipped = load_config_file(CONFIG_DIR / "lung_nodule_ct.yaml")
    assert shipped is not None and choose(RECORDED) == shipped.inference.threshold == 0.3


def test_the_rule_keeps_within_the_false_positive_bound_and_says_when_nothing_does() -> None:
    noisy = [{**row, "false_positives_per_patient": 3.0} if row["threshold"] <= 0.3 else row for row in RECORDED]
    assert choose(noisy) == 0.4
    with pytest.raises(ValueError, match="no threshold keeps false positives"):
        choose(RECORDED, max_false_positives=0.01)


def test_a_sweep_runs_on_validation_seeds_only() -> None:
    config = load_config_file(CONFIG_DIR / "lung_nodule_ct.yaml")
    assert config is not None
    network = load_network(config)
    with pytest.raises(ValueError, match="validation seeds"):
        sweep(config, network, seeds=[50000])
    (row,) = sweep(config, network, thresholds=(0.3,), seeds=[VALIDATION_SEED_START])
    assert row["threshold"] == 0.3 and row["false_positives_per_patient"] >= 0
    assert set(row) == {"threshold", "dice_nodules_ge_8mm", "n_nodules_ge_8mm", "false_positives_per_patient"}
