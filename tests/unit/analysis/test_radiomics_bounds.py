"""Upper bounds on the PyRadiomics knobs that multiply work: each refusal names its knob."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from awesomme.analysis import radiomics

ORIGINAL: dict[str, Any] = {"Original": {}}


@pytest.mark.parametrize(
    ("parameters", "knob"),
    [
        ({"imageType": ORIGINAL, "setting": {"binCount": radiomics.MAX_GRAY_LEVELS + 1}}, "setting.binCount"),
        ({"imageType": {"LoG": {"sigma": [1.0] * (radiomics.MAX_LOG_SIGMAS + 1)}}}, "imageType.LoG.sigma"),
        ({"imageType": {"LoG": {"sigma": [500.0]}}}, "imageType.LoG.sigma"),
        ({"imageType": {"Wavelet": {"level": radiomics.MAX_WAVELET_LEVEL + 1}}}, "imageType.Wavelet.level"),
        ({"imageType": ORIGINAL, "setting": {"distances": [1, 2, 3, 4, 5, 6]}}, "setting.distances"),
        ({"imageType": ORIGINAL, "setting": {"resampledPixelSpacing": [0.01, 1, 1]}}, "resampledPixelSpacing"),
        ({"imageType": ORIGINAL, "setting": {"padDistance": 10_000}}, "setting.padDistance"),
    ],
)
def test_work_multiplying_knobs_over_their_bounds_refused_naming_the_knob(
    parameters: dict[str, Any], knob: str
) -> None:
    with pytest.raises(radiomics.InvalidParameters, match=knob.replace(".", r"\.")):
        radiomics.validate_parameters(parameters)


def test_builtin_presets_within_bounds() -> None:
    for name in radiomics.BUILTIN_PRESETS:
        radiomics.validate_parameters(radiomics.builtin_preset(name))


def test_bin_width_bounded_by_the_gray_levels_it_makes_over_the_region() -> None:
    array = np.linspace(-1000, 3000, 8 * 16 * 16).reshape(8, 16, 16)
    mask = np.ones(array.shape, dtype=np.uint8)
    radiomics.check_work(array, mask, (1.0, 1.0, 1.0), {"setting": {"binWidth": 25}})  # 161 levels
    with pytest.raises(radiomics.InvalidParameters, match="binWidth"):
        radiomics.check_work(array, mask, (1.0, 1.0, 1.0), {"setting": {"binWidth": 1}})
    with pytest.raises(radiomics.InvalidParameters, match="resampledPixelSpacing"):
        radiomics.check_work(
            array, mask, (1.0, 1.0, 1.0), {"setting": {"binCount": 64, "resampledPixelSpacing": [0.02] * 3}}
        )
