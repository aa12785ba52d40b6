"""The schema of a classification model's YAML (``kind: classification``), validated with pydantic.

A classification model reads radiomics features (of a named preset, or an uploaded CSV in the layout of
``/api/radiomics/{id}.csv``) and answers one of its labels with calibrated probabilities. Its artefact is a skops
file whose sha256 the YAML pins; it is loaded with an explicit list of trusted types (see ``classification``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from awesomme.core.config_files import load_config_directory

__all__ = [
    "CLASSIFICATION_KIND",
    "DEMO_NOTICE",
    "ArtefactSpec",
    "ClassificationInput",
    "ClassificationModelConfig",
    "load_classification_configs",
    "load_classification_file",
]


CLASSIFICATION_KIND = "classification"
DEMO_NOTICE = "DEMO model - not for clinical use"


class ClassificationConfigError(ValueError):
    """A classification YAML that cannot be used, with the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassificationInput(_Strict):
    """What the model reads: the features of one preset's feature set, in this order."""

    preset: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="radiomics preset name, without version")
    features: list[str] = Field(min_length=1)
    # The same features may come from an uploaded CSV (one row, the /api/radiomics/{id}.csv columns).
    csv_upload: bool = True

    @field_validator("features")
    @classmethod
    def _unique(cls, features: list[str]) -> list[str]:
        if len(set(features)) != len(features):
            raise ValueError("features must not repeat")
        return features


class ArtefactSpec(_Strict):
    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    format: Literal["skops"] = "skops"


class ClassificationModelConfig(_Strict):
    kind: Literal["classification"]
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,63}$")
    version: str = Field(max_length=32)
    labels: list[str] = Field(min_length=2)
    input: ClassificationInput
    artefact: ArtefactSpec
    cohorts: list[str] = Field(default_factory=list)
    demo: bool
    intended_use: str
    training: dict[str, Any] = Field(default_factory=dict)
    validation: dict[str, Any] = Field(default_factory=dict)
    source: Path | None = None

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: list[str]) -> list[str]:
        if len(set(labels)) != len(labels) or not all(label.strip() for label in labels):
            raise ValueError("labels must be distinct, non-empty names")
        return labels

    @property
    def notice(self) -> str:
        """What every report of this model's predictions says about its use."""
        return DEMO_NOTICE if self.demo else ""


def load_classification_file(path: Path) -> ClassificationModelConfig | None:
    """The classification config in ``path``; None for a YAML of another kind."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ClassificationConfigError(f"not readable YAML: {error}") from error
    if not isinstance(raw, dict) or raw.get("kind") != CLASSIFICATION_KIND:
        return None
    try:
        return ClassificationModelConfig(**raw, source=path)
    except ValidationError as error:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ClassificationConfigError(reasons) from error


def load_classification_configs(
    directory: Path,
) -> tuple[dict[str, ClassificationModelConfig], dict[str, str]]:
    """Every ``kind: classification`` YAML in ``directory``, and for each file that failed, the reason."""
    return load_config_directory(directory, load_classification_file, ClassificationConfigError, "Classification model")
