"""Evaluation metrics: Dice, per-nodule matching, false positives; held-out seeds only."""

from __future__ import annotations

import numpy as np
import pytest

from awesomme.phantoms import Phantom
from awesomme.training.evaluate import dice, evaluate_nodules, held_out_patients, nodule_metrics_for_patient


def test_dice() -> None:
    a = np.zeros((4, 4, 4), np.uint8)
    b = np.zeros_like(a)
    assert dice(a, b) == 1.0
    a[0, 0, :2] = 1
    b[0, 0, 1:3] = 1
    assert dice(a, b) == pytest.approx(0.5)


def test_nodule_matching_and_false_positives() -> None:
    truth = np.zeros((6, 20, 20), np.uint8)
    truth[1:3, 2:6, 2:6] = 1  # nodule 1 (detected)
    truth[1:3, 12:16, 12:16] = 1  # nodule 2 (missed)
    prediction = np.zeros_like(truth)
    prediction[1:3, 2:6, 3:6] = 1
    prediction[4:6, 15:19, 0:3] = 1  # a false positive
    phantom = Phantom.__new__(Phantom)
    object.__setattr__(phantom, "seed", 0)
    object.__setattr__(phantom, "truth", {"nodule": truth})
    clinical = {
        "nodules": [
            {"id": 1, "type": "solid", "diameter_mm": 9.0, "centre_voxel": [2, 4, 4]},
            {"id": 2, "type": "part-solid", "diameter_mm": 7.0, "centre_voxel": [2, 14, 14]},
            {"id": 3, "type": "ggo", "diameter_mm": 12.0, "centre_voxel": [4, 10, 10]},  # not a nodule target
        ]
    }
    object.__setattr__(phantom, "clinical", clinical)
    nodules, false_positives = nodule_metrics_for_patient(prediction, phantom)
    assert [(d, found) for d, found, _ in nodules] == [(9.0, True), (7.0, False)]
    assert nodules[0][2] == pytest.approx(2 * 24 / (24 + 32))
    assert nodules[1][2] == 0.0
    assert false_positives == 1


def test_held_out_patients_refuse_training_seeds() -> None:
    with pytest.raises(ValueError, match="held-out"):
        next(held_out_patients("osteosarcoma-mr", "tumour", 1, start=10))


def test_nodule_evaluation_refuses_training_seeds() -> None:
    with pytest.raises(ValueError, match="validation"):
        evaluate_nodules(None, None, 1, start=39999)  # type: ignore[arg-type]
