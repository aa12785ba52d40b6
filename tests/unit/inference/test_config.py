from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from awesomme.inference.config import SegmentationModelConfig, load_segmentation_configs
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
