"""The models this server serves: configs from ``infer_configs/``, networks loaded once at start.

A model whose file is missing, mismatching or unloadable is disabled alone, with a log line naming the file;
``problems`` keeps the reasons for ``/api/health``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch

from awesomme.core.config import get_settings
from awesomme.inference.config import SegmentationModelConfig, load_segmentation_configs
from awesomme.inference.network import ModelLoadError, load_network

__all__ = ["LoadedModel", "ModelRegistry", "get_registry"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    config: SegmentationModelConfig
    network: torch.nn.Module


@dataclass
class ModelRegistry:
    models: dict[str, LoadedModel] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> ModelRegistry:
        configs, problems = load_segmentation_configs(directory)
        registry = cls(problems=dict(problems))
        for name, config in configs.items():
            try:
                registry.models[name] = LoadedModel(config, load_network(config))
            except ModelLoadError as error:
                source = config.source.name if config.source else name
                logger.error("Model %s disabled (%s): %s", name, source, error)
                registry.problems[source] = str(error)
        return registry


@lru_cache(maxsize=1)
def get_registry() -> ModelRegistry:
    return ModelRegistry.load(get_settings().infer_configs_dir)
