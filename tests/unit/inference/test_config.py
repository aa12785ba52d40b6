from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from pydantic import ValidationError

from awesomme.inference.config import SegmentationModelConfig, load_segmentation_configs
from awesomme.inference.network import build_network
from tests.unit.inference.conftest import tiny_config


def test_a_valid_config_describes_its_demo_weights() -> None:
    config = SegmentationModelConfig(**tiny_config())
    assert config.description.endswith("(DEMO weights - not for clinical use)")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"network": {"name": "os.system", "args": {}}}, "not one of"),
        ({"pre_transforms": [{"name": "Lambda", "args": {"func": "print"}}]}, "pre-processing step 'Lambda'"),
        ({"post_transforms": [{"name": "subprocess.run"}]}, "post-processing step"),
        ({"labels": {"tumour": 2}}, "1..N"),
        ({"inference": {"mode": "sliding_window", "roi_size": [32, 32]}}, "3 integers"),
        ({"name": "../escape"}, "String should match pattern"),
        ({"weights": {"file": "x.pt", "sha256": "abc"}}, "String should match pattern"),
        ({"surprise": 1}, "Extra inputs are not permitted"),
    ],
)
def test_configs_that_could_run_code_or_do_not_fit_are_refused(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SegmentationModelConfig(**{**tiny_config(), **change})


def test_the_loader_skips_other_kinds_and_names_broken_files(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(tiny_config()))
    (tmp_path / "classifier.yaml").write_text(yaml.safe_dump({"kind": "classification", "name": "x"}))
    (tmp_path / "broken.yaml").write_text("kind: segmentation\nname: [unclosed")
    (tmp_path / "invalid.yaml").write_text(yaml.safe_dump({**tiny_config("other"), "modality": "PET"}))
    (tmp_path / "twin.yaml").write_text(yaml.safe_dump(tiny_config()))
    configs, problems = load_segmentation_configs(tmp_path)
    assert list(configs) == ["tiny_mr"]
    assert set(problems) == {"broken.yaml", "invalid.yaml", "twin.yaml"}
    assert "modality" in problems["invalid.yaml"]
    assert "already declared" in problems["twin.yaml"]


NETWORKS = {
    "SegResNet": {
        "spatial_dims": 3,
        "in_channels": 1,
        "out_channels": 2,
        "init_filters": 8,
        "blocks_down": [1, 1],
        "blocks_up": [1],
    },
    "UNETR": {
        "spatial_dims": 3,
        "in_channels": 1,
        "out_channels": 2,
        "img_size": [16, 16, 16],
        "feature_size": 4,
        "hidden_size": 24,
        "mlp_dim": 48,
        "num_heads": 2,
    },
    "SwinUNETR": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "feature_size": 12, "depths": [1, 1, 1, 1]},
    "DynUNet": {
        "spatial_dims": 3,
        "in_channels": 1,
        "out_channels": 2,
        "kernel_size": [3, 3, 3],
        "strides": [1, 2, 2],
        "upsample_kernel_size": [2, 2],
        "filters": [4, 8, 8],
    },
    "AttentionUnet": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2]},
    "BasicUNet": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "features": [4, 4, 8, 8, 16, 4]},
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_each_allowed_network_builds_and_maps_a_window_to_two_class_logits(name: str) -> None:
    raw = {**tiny_config(), "network": {"name": name, "args": NETWORKS[name]}}
    raw["inference"] = {"mode": "sliding_window", "roi_size": [32, 32, 32]}
    network = build_network(SegmentationModelConfig(**raw)).eval()
    with torch.inference_mode():
        side = {"UNETR": 16, "SwinUNETR": 64}.get(name, 32)
        out = network(torch.zeros(1, 1, side, side, side))
    assert out.shape[:2] == (1, 2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"network": {"name": "ViT", "args": {}}}, "network 'ViT' is not one of"),
        (
            {"network": {"name": "UNet", "args": {"spatial_dims": 2, "evil": 1}}},
            "network UNet does not take the argument 'evil'",
        ),
        (
            {"network": {"name": "SwinUNETR", "args": {"norm_layer": "os.system"}}},
            "does not take the argument 'norm_layer'",
        ),
        ({"pre_transforms": [{"name": "RandAffine"}]}, "pre-processing step 'RandAffine' is not one of"),
        ({"pre_transforms": [{"name": "LoadImage"}]}, "pre-processing step 'LoadImage' is not one of"),
        ({"pre_transforms": [{"name": "CropForeground", "args": {"select_fn": "print"}}]}, "argument 'select_fn'"),
        ({"pre_transforms": [{"name": "Spacing", "args": {"pixdim": 1.5, "lazy": True}}]}, "argument 'lazy'"),
        (
            {"pre_transforms": [{"name": "Spacing", "args": {"pixel": 1.5}}]},
            "Spacing does not take the argument 'pixel'",
        ),
        ({"post_transforms": [{"name": "Spacing", "args": {"pixdim": 1.5}}]}, "post-processing step 'Spacing'"),
    ],
)
def test_a_network_transform_or_argument_outside_the_allow_list_is_refused_by_name(change: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SegmentationModelConfig(**{**tiny_config(), **change})


def test_a_model_with_a_spacing_or_orientation_step_resamples_and_one_without_does_not() -> None:
    assert not SegmentationModelConfig(**tiny_config()).resamples
    steps = [{"name": "Orientation", "args": {"axcodes": "RAS"}}, {"name": "Spacing", "args": {"pixdim": [1.5] * 3}}]
    assert SegmentationModelConfig(**{**tiny_config(), "pre_transforms": steps}).resamples


def test_a_yaml_naming_an_unknown_network_is_reported_with_that_name(tmp_path: Path) -> None:
    (tmp_path / "odd.yaml").write_text(yaml.safe_dump({**tiny_config(), "network": {"name": "Evil", "args": {}}}))
    configs, problems = load_segmentation_configs(tmp_path)
    assert not configs and "'Evil' is not one of" in problems["odd.yaml"]
