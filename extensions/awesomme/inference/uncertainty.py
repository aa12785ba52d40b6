"""How unsure a model is about a volume: disagreement between test-time-augmented predictions.

Each flip of the in-plane axes gives a prediction (flipped back); the uncertainty is one minus the mean Dice of
those with the unflipped one. Two empty predictions agree perfectly.
"""

from __future__ import annotations

import numpy as np
import torch

from awesomme.inference.config import SegmentationModelConfig
from awesomme.inference.predict import predict

__all__ = ["FLIPS", "dice", "tta_uncertainty"]

FLIPS: tuple[tuple[int, ...], ...] = ((2,), (1,), (1, 2))  # (slice, row, column) axes


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def tta_uncertainty(
    network: torch.nn.Module, array: np.ndarray, config: SegmentationModelConfig, affine: np.ndarray | None = None
) -> float:
    """``affine``: the volume's (a model that resamples needs it); each flipped copy keeps it, so the network sees
    the flipped content on the same grid, as augmentation means."""
    reference = predict(network, array, config, affine=affine).label_map
    agreements = []
    for axes in FLIPS:
        flipped = predict(network, np.flip(array, axes).copy(), config, affine=affine).label_map
        agreements.append(dice(reference, np.flip(flipped, axes)))
    return 1.0 - float(np.mean(agreements))
