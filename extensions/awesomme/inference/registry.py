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

from awesomme.analysis.classification import ArtefactError, LoadedClassifier, load_classifier
from awesomme.analysis.classifier_config import load_classification_configs
from awesomme.core.config import get_settings
from awesomme.inference.config import ConfigError, SegmentationModelConfig, load_config_file, load_segmentation_configs
from awesomme.inference.device import resolve_device
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
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where the networks are
    # Classification models (kind: classification) are no MONAI Label infer tasks: kept apart from ``models``.
    classifiers: dict[str, LoadedClassifier] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        directory: Path,
        versions: dict[str, str] | None = None,
        models_dir: Path | None = None,
        device: torch.device | None = None,
    ) -> ModelRegistry:
        """The models of ``directory`` on ``device`` (the CPU by default); ``versions`` swaps in trained versions
        from ``models_dir``."""
        configs, problems = load_segmentation_configs(directory)
        for name, version in (versions or {}).items():
            path = (models_dir or directory) / name / version / f"{name}.yaml"
            try:
                trained = load_config_file(path)
            except ConfigError as error:
                problems[str(path.relative_to(path.parents[2]))] = str(error)
                configs.pop(name, None)  # the version asked for is not there: serve nothing rather than another
                continue
            if trained is not None and trained.name == name:
                configs[name] = trained
        registry = cls(problems=dict(problems), device=device or torch.device("cpu"))
        for name, config in configs.items():
            try:
                registry.models[name] = LoadedModel(config, load_network(config, str(registry.device)))
            except ModelLoadError as error:
                source = config.source.name if config.source else name
                logger.error("Model %s disabled (%s): %s", name, source, error)
                registry.problems[source] = str(error)
        registry._load_classifiers(directory)
        return registry

    def _load_classifiers(self, directory: Path) -> None:
        configs, problems = load_classification_configs(directory)
        self.problems.update(problems)
        for name, config in configs.items():
            try:
                self.classifiers[name] = load_classifier(config)
            except ArtefactError as error:
                source = config.source.name if config.source else name
                logger.error("Classification model %s disabled (%s): %s", name, source, error)
                self.problems[source] = str(error)


@lru_cache(maxsize=1)
def get_registry() -> ModelRegistry:
    settings = get_settings()
    device = resolve_device(settings.device)
    return ModelRegistry.load(settings.infer_configs_dir, settings.model_versions, settings.models_dir, device)
