"""``python -m awesomme.training``: re-evaluating saved weights keeps the training facts and the weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from awesomme.core.checksums import sha256_of
from awesomme.inference.config import load_config_file
from awesomme.inference.network import build_network
from awesomme.training import train
from awesomme.training.__main__ import main
from awesomme.training.models import MODELS, base_config

TINY_NETWORK = {
    "name": "UNet",
    "args": {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2]},
}


def test_evaluate_only_rewrites_the_figures_and_keeps_training_facts_and_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = dataclasses.replace(MODELS["osteosarcoma_mr"], name="tiny_osteo", network=TINY_NETWORK, eval_patients=1)
    config_dir = tmp_path / "infer_configs"
    config_dir.mkdir()
    monkeypatch.setattr(train, "CONFIG_DIR", config_dir)
    torch.manual_seed(0)
    weights = tmp_path / "tiny_osteo.pt"
    torch.save(build_network(base_config(spec)).state_dict(), weights)
    digest = sha256_of(weights)
    facts = {"iterations": 7, "wall_time_s": 1.5}
    train.write_yaml(base_config(spec, sha256=digest, training=facts), config_dir / "tiny_osteo.yaml")

    summary = train.reevaluate(spec, weights_dir=tmp_path)

    written = load_config_file(config_dir / "tiny_osteo.yaml")
    assert written is not None
    assert written.training == facts
    assert written.validation["n_patients"] == 1
    assert min(written.validation["held_out_seeds"]) >= 50000
    assert written.validation["dice_mean"] == summary["validation"]["dice_mean"]
    assert written.expected_runtime_s
    assert sha256_of(weights) == digest == written.weights.sha256

    torch.save(build_network(base_config(spec)).state_dict(), weights)  # other weights than the YAML's
    with pytest.raises(ValueError, match=r"is not the weights tiny_osteo\.yaml describes"):
        train.reevaluate(spec, weights_dir=tmp_path)
    assert load_config_file(config_dir / "tiny_osteo.yaml") == written


def test_evaluate_only_needs_a_yaml_to_keep_the_training_facts_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(train, "CONFIG_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="train the model first"):
        train.reevaluate(MODELS["lung_nodule_ct"], weights_dir=tmp_path)


def test_the_classifier_name_is_the_classifiers() -> None:
    from awesomme.training import classifier
    from awesomme.training.__main__ import CLASSIFIER

    assert classifier.SPEC.name == CLASSIFIER


def test_evaluate_only_is_refused_for_the_classifier(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--model", "osteosarcoma_response", "--evaluate-only"])
    assert stopped.value.code == 2
    assert "--evaluate-only is for the segmentation models" in capsys.readouterr().err


def test_training_without_evaluation_writes_weights_and_facts_for_evaluate_only_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = dataclasses.replace(
        MODELS["osteosarcoma_mr"],
        name="tiny_osteo",
        network=TINY_NETWORK,
        train_seeds=range(0, 1),
        max_iterations=2,
        batch=2,
        eval_patients=1,
    )
    monkeypatch.setattr(train, "CONFIG_DIR", tmp_path)

    summary = train.run(spec, weights_dir=tmp_path, evaluate=False)

    written = load_config_file(tmp_path / "tiny_osteo.yaml")
    assert written is not None
    assert written.weights.sha256 == sha256_of(tmp_path / "tiny_osteo.pt")
    assert written.training["iterations"] == 2 == summary["training"]["iterations"]
    assert "--evaluate-only" in written.validation["pending"]
    train.reevaluate(spec, weights_dir=tmp_path)
    evaluated = load_config_file(tmp_path / "tiny_osteo.yaml")
    assert evaluated is not None and "pending" not in evaluated.validation
    assert evaluated.validation["n_patients"] == 1 and evaluated.training == written.training


def _tiny(**changes: object) -> train.ModelSpec:
    return dataclasses.replace(
        MODELS["osteosarcoma_mr"],
        name="tiny_osteo",
        network=TINY_NETWORK,
        train_seeds=range(0, 1),
        max_iterations=2,
        batch=2,
        eval_patients=1,
        **changes,
    )


def _shipped_meeting_the_target(spec: train.ModelSpec, directory: Path) -> Path:
    torch.manual_seed(0)
    weights = directory / "tiny_osteo.pt"
    torch.save(build_network(base_config(spec)).state_dict(), weights)
    validation = {"target": "mean Dice >= 0.80", "target_met": True, "dice_mean": 0.9}
    config = base_config(spec, sha256=sha256_of(weights), training={"iterations": 9}, validation=validation)
    train.write_yaml(config, directory / "tiny_osteo.yaml")
    return weights


def test_weights_that_miss_the_target_are_kept_beside_shipped_ones_that_meet_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two iterations of a tiny network miss a Dice of 0.80: the shipped weights and their YAML stay as they were."""
    spec = _tiny()
    monkeypatch.setattr(train, "CONFIG_DIR", tmp_path)
    weights = _shipped_meeting_the_target(spec, tmp_path)
    before = (sha256_of(weights), (tmp_path / "tiny_osteo.yaml").read_text())

    summary = train.run(spec, weights_dir=tmp_path, candidates_dir=tmp_path / "candidates")

    assert (sha256_of(weights), (tmp_path / "tiny_osteo.yaml").read_text()) == before
    kept = Path(summary["kept"])
    assert kept.parent == tmp_path / "candidates" / "tiny_osteo" and (kept / "tiny_osteo.pt").is_file()
    assert "target missed: mean Dice >= 0.80" in summary["missed"]
    candidate = load_config_file(kept / "model.yaml")
    assert candidate is not None and candidate.validation["target_met"] is False
    assert candidate.weights.sha256 == sha256_of(kept / "tiny_osteo.pt")


def test_unevaluated_weights_never_replace_shipped_ones_that_meet_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _tiny()
    monkeypatch.setattr(train, "CONFIG_DIR", tmp_path)
    weights = _shipped_meeting_the_target(spec, tmp_path)
    digest = sha256_of(weights)
    summary = train.run(spec, weights_dir=tmp_path, evaluate=False, candidates_dir=tmp_path / "candidates")
    assert sha256_of(weights) == digest and Path(summary["kept"]).is_dir()
