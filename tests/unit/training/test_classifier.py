"""The demo classifier's training on a handful of small phantoms: features as the server extracts them, a YAML that
loads through the registry, an artefact without training data, and figures that are measured."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from awesomme.analysis.classification import load_classifier, predict
from awesomme.analysis.classifier_config import DEMO_NOTICE, load_classification_file
from awesomme.analysis.radiomics import builtin_preset
from awesomme.phantoms import EVALUATION_SEED_START
from awesomme.training.classifier import SPEC, phantom_features, run

TINY = dataclasses.replace(
    SPEC, n_train=12, n_held_out=6, shape=(12, 96, 96), n_features_to_select=5, n_neighbors=3, cv_folds=3
)


def test_phantom_features_are_the_presets_features_of_its_tumour() -> None:
    result = phantom_features(3, TINY.shape, builtin_preset(SPEC.preset))
    assert result is not None and result.seed == 3 and result.response in ("good", "poor")
    assert len(result.features) > 1000
    assert all(name.split("_")[0].startswith(("original", "log-sigma", "wavelet")) for name in result.features)
    assert result.features["original_shape_VoxelVolume"] > 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("classifier")
    return run(TINY, jobs=1, config_dir=out, artefact_dir=out), out


def test_training_writes_a_yaml_the_registry_loads(trained: tuple[dict, Path]) -> None:
    fields, out = trained
    config = load_classification_file(out / f"{SPEC.name}.yaml")
    assert config is not None and config.demo and DEMO_NOTICE in config.intended_use
    assert Path(config.artefact.file).parent == out  # the shipped model is left alone
    model = load_classifier(config)
    features = dict(zip(config.input.features, np.zeros(len(config.input.features)), strict=True))
    assert predict(model, features).label in ("good", "poor")
    relieff = model.pipeline.named_steps["relieff"]
    assert relieff._X is None and relieff._y is None and relieff.attr is None
    assert fields["training"]["n_patients"] == 12 and len(fields["training"]["selected_features"]) == 5


def test_training_and_held_out_seeds_never_mix(trained: tuple[dict, Path]) -> None:
    fields, _ = trained
    training = fields["training"]["seeds"].split(" ")[0].split("-")
    held_out = fields["validation"]["held_out"]["seeds"].split(" ")[0].split("-")
    assert int(training[1]) < EVALUATION_SEED_START <= int(held_out[0])
    for figures in (fields["validation"]["cross_validated"], fields["validation"]["held_out"]):
        assert figures["auc"] is None or 0.0 <= figures["auc"] <= 1.0
        assert figures["n_good"] + figures["n_poor"] > 0
