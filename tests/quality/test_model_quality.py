"""Quality of the shipped demo models on held-out phantoms (seeds >= 50000, default grid, never trained on).

Each model is loaded exactly as the app serves it (YAML -> ``load_network``: sha256 check, strict state dict)
and run through ``predict``.  Targets: osteosarcoma tumour Dice >= 0.80, lung Dice >= 0.90, Dice >= 0.70 on
solid/part-solid nodules of 8 mm or more.  About 2 minutes on a 2-core CPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from awesomme.inference.config import SegmentationModelConfig, load_segmentation_configs
from awesomme.inference.network import load_network
from awesomme.training.evaluate import evaluate_nodules, evaluate_segmentation

CONFIG_DIR = Path(__file__).resolve().parents[2] / "infer_configs"
N_PATIENTS = 5  # held-out patients with the structure present, per model


@pytest.fixture(scope="module")
def configs() -> dict[str, SegmentationModelConfig]:
    torch.set_num_threads(2)
    loaded, problems = load_segmentation_configs(CONFIG_DIR)
    assert not problems, problems
    return loaded


@pytest.mark.parametrize(
    ("name", "kind", "structure", "target"),
    [
        ("osteosarcoma_mr", "osteosarcoma-mr", "tumour", 0.80),
        ("lung_volume_ct", "chest-ct", "lung", 0.90),
    ],
)
def test_segmentation_dice(
    configs: dict[str, SegmentationModelConfig], name: str, kind: str, structure: str, target: float
) -> None:
    config = configs[name]
    assert config.demo_weights
    network = load_network(config)
    metrics = evaluate_segmentation(network, config, kind, structure, N_PATIENTS)
    print(
        f"\n{name}: held-out seeds {metrics.seeds}, Dice {[round(d, 3) for d in metrics.dice]}, "
        f"mean {metrics.mean_dice:.3f}, predict {sum(metrics.predict_s):.1f} s"
    )
    assert len(metrics.dice) >= N_PATIENTS
    assert min(metrics.seeds) >= 50000
    assert metrics.mean_dice >= target


def test_nodule_dice_and_detection(configs: dict[str, SegmentationModelConfig]) -> None:
    config = configs["lung_nodule_ct"]
    network = load_network(config)
    metrics = evaluate_nodules(network, config, N_PATIENTS)
    summary = metrics.summary()
    print(f"\nlung_nodule_ct: {summary}, predict {sum(metrics.predict_s):.1f} s")
    assert len(metrics.patient_dice) >= N_PATIENTS
    assert min(metrics.seeds) >= 50000
    assert metrics.count(8.0) >= 3
    assert metrics.dice_at_least(8.0) >= 0.70
