"""Classification models: a tiny ReliefF + calibrated SVM trained here, its skops round trip, trusted types, the
YAML schema and the registry's handling of good and bad classification YAMLs."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
import yaml
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline

from awesomme.analysis.classification import (
    ArtefactError,
    LoadedClassifier,
    MissingFeatures,
    input_schema,
    load_artefact,
    predict,
    save_artefact,
)
from awesomme.analysis.classifier_config import DEMO_NOTICE, ClassificationModelConfig
from awesomme.core.checksums import sha256_of
from awesomme.inference.registry import ModelRegistry
from awesomme.training.classifier import SPEC, build_pipeline

FEATURES = [f"original_firstorder_F{i:02d}" for i in range(12)]


class Doubler(BaseEstimator, TransformerMixin):
    """A harmless type that is nevertheless not on the trusted list."""

    def fit(self, x: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, x: Any) -> Any:
        return np.asarray(x) * 2


def _data(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Feature 3 decides the label (with a little noise); the rest is noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    y = np.where(x[:, 3] + 0.2 * rng.normal(size=n) > 0, "good", "poor")
    return x, y


def _config(where: Path, digest: str, /, **overrides: Any) -> dict[str, Any]:
    raw = {
        "kind": "classification",
        "name": "tiny_response",
        "version": "0.0.1",
        "labels": ["good", "poor"],
        "input": {"preset": "osteosarcoma-mr", "features": FEATURES},
        "artefact": {"file": str(where), "sha256": digest},
        "cohorts": ["alpha"],
        "demo": True,
        "intended_use": "tests",
    }
    raw.update(overrides)
    return raw


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pipeline, Path, str]:
    """The demo model's pipeline (fewer features to select) fitted on synthetic features and saved with skops."""
    spec = SPEC.__class__(**{**SPEC.__dict__, "n_features_to_select": 3, "n_neighbors": 10})
    x, y = _data()
    pipeline = build_pipeline(spec).fit(x, y)
    path = tmp_path_factory.mktemp("artefact") / "tiny.skops"
    return pipeline, path, save_artefact(pipeline, path)


def test_the_saved_pipeline_holds_no_training_data_and_predicts_the_same(trained: tuple[Pipeline, Path, str]) -> None:
    pipeline, path, sha256 = trained
    relieff = pipeline.named_steps["relieff"]
    assert relieff._X is None and relieff._y is None  # stripped before saving
    assert 3 in relieff.top_features_[:3]  # ReliefF found the informative feature
    loaded = load_artefact(path, sha256)
    x, y = _data(40, seed=1)
    assert np.allclose(loaded.predict_proba(x), pipeline.predict_proba(x))
    assert np.mean(loaded.predict(x) == y) >= 0.75
    # ReliefF saw the whole scaled training matrix; none of it is in the file (the SVM keeps its support vectors,
    # on the selected features only).
    x_train, _ = _data()
    unselected = [i for i in range(len(FEATURES)) if i not in relieff.top_features_[:3]]
    scaled = pipeline.named_steps["scale"].transform(x_train)[:, unselected]
    with zipfile.ZipFile(path) as archive:
        stored = b"".join(archive.read(name) for name in archive.namelist())
    assert not [value for value in scaled.ravel() if value.tobytes() in stored]


def test_prediction_names_its_label_and_calibrated_probabilities(trained: tuple[Pipeline, Path, str]) -> None:
    _, path, sha256 = trained
    config = ClassificationModelConfig(**_config(path, sha256))
    model = LoadedClassifier(config, load_artefact(path, sha256))
    good = dict(zip(FEATURES, [0.0] * 3 + [2.5] + [0.0] * 8, strict=True))
    poor = {**good, FEATURES[3]: -2.5}
    answer = predict(model, good)
    assert answer.label == "good" and list(answer.probabilities) == ["good", "poor"]
    assert answer.probabilities["good"] > 0.8 and sum(answer.probabilities.values()) == pytest.approx(1.0)
    assert predict(model, poor).label == "poor"
    assert predict(model, {**good, "extra_feature": 1.0}) == answer  # features the model does not read are ignored


def test_missing_and_non_numeric_features_are_named(trained: tuple[Pipeline, Path, str]) -> None:
    _, path, sha256 = trained
    model = LoadedClassifier(ClassificationModelConfig(**_config(path, sha256)), load_artefact(path, sha256))
    values = dict.fromkeys(FEATURES, 0.0)
    with pytest.raises(MissingFeatures, match=f"1 of the model's 12 features are missing: {FEATURES[5]}"):
        predict(model, {k: v for k, v in values.items() if k != FEATURES[5]})
    with pytest.raises(MissingFeatures, match=f"{FEATURES[0]} is not a number"):
        predict(model, {**values, FEATURES[0]: "abc"})
    with pytest.raises(MissingFeatures, match=f"{FEATURES[1]} is not a finite number"):
        predict(model, {**values, FEATURES[1]: float("nan")})
    with pytest.raises(MissingFeatures, match=f"{FEATURES[2]} has no value"):
        predict(model, {**values, FEATURES[2]: None})


def test_an_untrusted_type_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    x, y = _data()
    pipeline = Pipeline([("double", Doubler()), ("svm", build_pipeline(SPEC).named_steps["svm"])]).fit(x, y)
    path = tmp_path / "untrusted.skops"
    skops.io.dump(pipeline, path)
    with pytest.raises(ArtefactError, match=r"untrusted types: .*Doubler"):
        load_artefact(path)


def test_a_tampered_or_corrupt_artefact_is_refused(trained: tuple[Pipeline, Path, str], tmp_path: Path) -> None:
    _, path, _ = trained
    with pytest.raises(ArtefactError, match="does not match the sha256"):
        load_artefact(path, "0" * 64)
    corrupt = tmp_path / "corrupt.skops"
    corrupt.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ArtefactError, match="not a readable skops file"):
        load_artefact(corrupt)
    with pytest.raises(ArtefactError, match="missing"):
        load_artefact(tmp_path / "absent.skops")


def test_the_input_schema_is_a_form_for_one_feature_set(trained: tuple[Pipeline, Path, str]) -> None:
    _, path, sha256 = trained
    config = ClassificationModelConfig(**_config(path, sha256))
    schema = input_schema(config)
    assert schema["type"] == "object" and schema["required"] == ["feature_set_id"]
    assert schema["properties"]["feature_set_id"]["type"] == "integer"
    assert schema["x-preset"] == "osteosarcoma-mr" and schema["x-features"] == FEATURES
    assert config.notice == DEMO_NOTICE
    assert ClassificationModelConfig(**_config(path, sha256, demo=False)).notice == ""


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"labels": ["good"]}, "labels"),
        ({"labels": ["good", "good"]}, "distinct"),
        ({"input": {"preset": "osteosarcoma-mr", "features": ["a", "a"]}}, "repeat"),
        ({"artefact": {"file": "x.skops", "sha256": "nothex"}}, "sha256"),
        ({"unknown_key": 1}, "unknown_key"),
    ],
)
def test_bad_yaml_fields_are_named(
    trained: tuple[Pipeline, Path, str], change: dict[str, Any], reason: str, tmp_path: Path
) -> None:
    _, path, sha256 = trained
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(_config(path, sha256, **change)))
    registry = ModelRegistry.load(tmp_path)
    assert registry.classifiers == {} and reason in registry.problems["bad.yaml"]


def test_the_registry_serves_good_classifiers_apart_and_disables_bad_ones_alone(
    trained: tuple[Pipeline, Path, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, path, sha256 = trained
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(_config(path, sha256)))
    (tmp_path / "tampered.yaml").write_text(yaml.safe_dump(_config(path, "f" * 64, name="tampered")))
    labels = _config(path, sha256, name="other_labels", labels=["responder", "non_responder"])
    (tmp_path / "labels.yaml").write_text(yaml.safe_dump(labels))
    (tmp_path / "broken.yaml").write_text("kind: classification\nname: [unclosed\n")
    with caplog.at_level(logging.ERROR):
        registry = ModelRegistry.load(tmp_path)
    assert list(registry.classifiers) == ["tiny_response"]
    assert registry.models == {}  # no MONAI Label infer task for a classifier
    assert "sha256" in registry.problems["tampered.yaml"]
    assert "declares labels" in registry.problems["labels.yaml"]
    assert "not readable YAML" in registry.problems["broken.yaml"]
    assert all(name in caplog.text for name in ("tampered.yaml", "labels.yaml", "broken.yaml"))
    assert sha256_of(path) == sha256
