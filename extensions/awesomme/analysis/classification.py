"""Classification models on radiomics features: their artefacts (skops), predictions and input schema.

An artefact is a scikit-learn ``Pipeline`` saved with skops. Loading never unpickles: skops rebuilds only the
types of ``TRUSTED_TYPES`` and refuses a file holding any other. Before saving, ReliefF's copy of the training
data is dropped (:func:`strip_training_data`): an artefact must not carry patient data.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import skops.io
from sklearn.pipeline import Pipeline

from awesomme.analysis.classifier_config import ClassificationModelConfig
from awesomme.core.checksums import sha256_of

__all__ = [
    "SHIPPED_ARTEFACTS_DIR",
    "TRUSTED_TYPES",
    "ArtefactError",
    "ClassificationResult",
    "LoadedClassifier",
    "MissingFeatures",
    "artefact_path",
    "feature_vector",
    "input_schema",
    "load_artefact",
    "load_classifier",
    "predict",
    "save_artefact",
    "strip_training_data",
]

logger = logging.getLogger(__name__)

SHIPPED_ARTEFACTS_DIR = Path(__file__).resolve().parents[3] / "apps" / "awesomme" / "model"
# Every type a shipped pipeline is made of (scaler, ReliefF, calibrated SVM). Anything else in a file is refused.
TRUSTED_TYPES = (
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "skrebate.relieff.ReliefF",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.svm._classes.SVC",
)
# ReliefF keeps the training matrix and its labels, and each feature's extreme values (one patient's value each):
# patient data, never saved. Selecting features needs only ``top_features_``.
RELIEFF_TRAINING_ATTRIBUTES = ("_X", "_y", "attr")


class ArtefactError(Exception):
    """An artefact that cannot serve: missing, mismatching its sha256, holding untrusted types, or not a pipeline."""


class MissingFeatures(ValueError):
    """The input lacks features the model needs, or holds values that are not finite numbers."""


@dataclass(frozen=True)
class LoadedClassifier:
    config: ClassificationModelConfig
    pipeline: Pipeline


@dataclass(frozen=True)
class ClassificationResult:
    label: str
    probabilities: dict[str, float]


def artefact_path(config: ClassificationModelConfig) -> Path:
    """Relative artefact files live with the shipped models (``apps/awesomme/model/``)."""
    path = Path(config.artefact.file)
    return path if path.is_absolute() else SHIPPED_ARTEFACTS_DIR / path


def strip_training_data(pipeline: Pipeline) -> Pipeline:
    """Drop every step's stored copy of the training data (ReliefF's); predictions do not need it."""
    for _, step in pipeline.steps:
        for attribute in RELIEFF_TRAINING_ATTRIBUTES:
            if hasattr(step, attribute):
                setattr(step, attribute, None)
    return pipeline


def save_artefact(pipeline: Pipeline, path: Path) -> str:
    """Save a fitted pipeline (training data stripped) with skops; returns the file's sha256."""
    strip_training_data(pipeline)
    path.parent.mkdir(parents=True, exist_ok=True)
    skops.io.dump(pipeline, path)
    return sha256_of(path)


def load_artefact(path: Path, sha256: str | None = None) -> Pipeline:
    """The pipeline in ``path``, built only from trusted types; refuses a file with any other type."""
    if not path.is_file():
        raise ArtefactError(f"artefact {path.name} is missing")
    if sha256 is not None and sha256_of(path) != sha256:
        raise ArtefactError(f"artefact {path.name} does not match the sha256 of its YAML")
    try:
        untrusted = sorted(set(skops.io.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
    except Exception as error:  # skops raises many kinds on a corrupt file
        raise ArtefactError(f"artefact {path.name} is not a readable skops file: {error}") from error
    if untrusted:
        raise ArtefactError(f"artefact {path.name} holds untrusted types: {', '.join(untrusted)}")
    try:
        pipeline = skops.io.load(path, trusted=list(TRUSTED_TYPES))
    except Exception as error:
        raise ArtefactError(f"artefact {path.name} cannot be loaded: {error}") from error
    if not isinstance(pipeline, Pipeline):
        raise ArtefactError(f"artefact {path.name} holds a {type(pipeline).__name__}, not a scikit-learn Pipeline")
    return pipeline


def load_classifier(config: ClassificationModelConfig) -> LoadedClassifier:
    pipeline = load_artefact(artefact_path(config), config.artefact.sha256)
    classes = [str(label) for label in getattr(pipeline, "classes_", [])]
    if sorted(classes) != sorted(config.labels):
        raise ArtefactError(f"artefact predicts {classes}, the YAML declares labels {config.labels}")
    return LoadedClassifier(config, pipeline)


def feature_vector(features: Mapping[str, Any], names: list[str]) -> np.ndarray:
    """The values of ``names`` from ``features`` as one row; names what is missing or not a finite number."""
    missing = [name for name in names if name not in features]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise MissingFeatures(f"{len(missing)} of the model's {len(names)} features are missing: {shown}")
    row = []
    for name in names:
        value = features[name]
        if value is None:  # a feature set stores null where PyRadiomics gave no finite value
            raise MissingFeatures(f"feature {name} has no value in this feature set")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise MissingFeatures(f"feature {name} is not a number: {str(value)[:40]!r}") from None
        if not math.isfinite(number):
            raise MissingFeatures(f"feature {name} is not a finite number: {number}")
        row.append(number)
    return np.asarray([row], dtype=np.float64)


def predict(model: LoadedClassifier, features: Mapping[str, Any]) -> ClassificationResult:
    """The label with the highest calibrated probability, and every label's probability."""
    row = feature_vector(features, model.config.input.features)
    probabilities = model.pipeline.predict_proba(row)[0]
    by_label = {str(label): float(p) for label, p in zip(model.pipeline.classes_, probabilities, strict=True)}
    ordered = {label: round(by_label[label], 6) for label in model.config.labels}
    return ClassificationResult(max(ordered, key=lambda label: ordered[label]), ordered)


def input_schema(config: ClassificationModelConfig) -> dict[str, Any]:
    """A JSON schema of the predict request: a viewer draws it as a form (one feature-set field).

    The features the model reads are listed under ``x-features`` (an uploaded CSV must hold them all).
    """
    preset = config.input.preset
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"{config.name} {config.version}",
        "description": f"Radiomics features of preset {preset}; answers one of: {', '.join(config.labels)}",
        "type": "object",
        "properties": {
            "feature_set_id": {
                "type": "integer",
                "minimum": 1,
                "title": "Feature set",
                "description": f"a feature set extracted with radiomics preset {preset}",
            }
        },
        "required": ["feature_set_id"],
        "additionalProperties": False,
        "x-preset": preset,
        "x-features": list(config.input.features),
        "x-csv-upload": config.input.csv_upload,
    }
