"""Build a model's network from its config and load its weights safely (sha256 first, tensors only).

A loaded network runs its 3D convolutions in the exact forms of ``inference/fast_convolutions.py``.
"""

from __future__ import annotations

from pathlib import Path

import monai.networks.nets as nets
import torch

from awesomme.core.checksums import sha256_of
from awesomme.inference.config import SegmentationModelConfig
from awesomme.inference.fast_convolutions import use_fast_convolutions

__all__ = ["ModelLoadError", "build_network", "load_network", "weights_path"]

SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parents[3] / "apps" / "awesomme" / "model"


class ModelLoadError(Exception):
    """A model cannot serve: missing or mismatching weights, or weights that do not fit the network."""


def weights_path(config: SegmentationModelConfig) -> Path:
    """Relative weight files live with the shipped models (``apps/awesomme/model/``)."""
    path = Path(config.weights.file)
    return path if path.is_absolute() else SHIPPED_WEIGHTS_DIR / path


def build_network(config: SegmentationModelConfig) -> torch.nn.Module:
    network_class = getattr(nets, config.network.name)
    return network_class(**config.network.args)


def load_network(config: SegmentationModelConfig, device: str = "cpu") -> torch.nn.Module:
    path = weights_path(config)
    if not path.is_file():
        raise ModelLoadError(f"{config.name}: weights file {path.name} is missing")
    actual = sha256_of(path)
    if actual != config.weights.sha256:
        raise ModelLoadError(
            f"{config.name}: weights file {path.name} has sha256 {actual}, the YAML says {config.weights.sha256}"
        )
    try:
        network = build_network(config)
        state = torch.load(path, map_location=device, weights_only=True)  # tensors only: no pickled code runs
        network.load_state_dict(state, strict=True)
    except Exception as error:  # torch raises many types for a bad file or a mismatching network
        raise ModelLoadError(f"{config.name}: weights file {path.name} does not load: {error}") from error
    return use_fast_convolutions(network.to(device).eval())
