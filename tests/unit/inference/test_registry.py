from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import yaml

from awesomme.core.checksums import sha256_of
from awesomme.inference.predict import predict
from awesomme.inference.registry import ModelRegistry
from tests.unit.inference.conftest import tiny_config


def test_a_good_model_loads_and_predicts_in_the_volume_grid(model_dir: Path) -> None:
    registry = ModelRegistry.load(model_dir)
    assert registry.problems == {}
    model = registry.models["tiny_mr"]
    volume = np.random.default_rng(0).integers(0, 1000, (5, 40, 48)).astype(np.uint16)
    prediction = predict(model.network, volume, model.config)
    assert prediction.label_map.shape == volume.shape
    assert set(np.unique(prediction.label_map)) <= {0, 1}
    assert 0.5 <= prediction.confidence <= 1.0


def test_bad_models_are_disabled_alone_naming_their_file(model_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = yaml.safe_load((model_dir / "tiny_mr.yaml").read_text())
    (model_dir / "missing.yaml").write_text(yaml.safe_dump(tiny_config("missing_mr", str(model_dir / "gone.pt"))))
    (model_dir / "mismatch.yaml").write_text(
        yaml.safe_dump({**good, "name": "mismatch_mr", "weights": {**good["weights"], "sha256": "f" * 64}})
    )
    (model_dir / "garbage.pt").write_bytes(b"not a torch file")
    garbage = tiny_config("garbage_mr", str(model_dir / "garbage.pt"), sha256_of(model_dir / "garbage.pt"))
    (model_dir / "garbage.yaml").write_text(yaml.safe_dump(garbage))
    other_shape = {
        **good,
        "name": "other_mr",
        "network": {**good["network"], "args": {**good["network"]["args"], "channels": [8, 16]}},
    }
    (model_dir / "other.yaml").write_text(yaml.safe_dump(other_shape))

    with caplog.at_level(logging.ERROR):
        registry = ModelRegistry.load(model_dir)
    assert list(registry.models) == ["tiny_mr"]
    assert "missing" in registry.problems["missing.yaml"]
    assert "sha256" in registry.problems["mismatch.yaml"]
    assert "does not load" in registry.problems["garbage.yaml"]
    assert "does not load" in registry.problems["other.yaml"]
    assert all(name in caplog.text for name in ("missing.yaml", "mismatch.yaml", "garbage.yaml", "other.yaml"))
