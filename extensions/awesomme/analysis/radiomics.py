"""Radiomics features of one labelled region with PyRadiomics, the built-in presets and what identifies the inputs.

PyRadiomics comes from the ``pyradiomics-bhklab`` distribution (``import radiomics``); never the ``pyradiomics``
package. Feature names are PyRadiomics' (``<image type>_<feature class>_<feature>``), which map onto IBSI terms.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pykwalify.core
import pykwalify.errors
import radiomics
import SimpleITK as sitk
import yaml
from radiomics import featureextractor

from awesomme.core.provenance import installed_versions

__all__ = [
    "BUILTIN_PRESETS",
    "InvalidParameters",
    "builtin_preset",
    "effective_parameters",
    "extract_features",
    "extract_with_parameters",
    "image_from_array",
    "image_identity",
    "library_versions",
    "validate_parameters",
]

PRESETS_DIR = Path(__file__).with_name("presets")
BUILTIN_PRESETS = ("ibsi-original", "osteosarcoma-mr")
# Distributions whose versions a feature set records (from package metadata: some report a stale version themselves).
LIBRARIES = ("pyradiomics-bhklab", "SimpleITK", "numpy", "PyWavelets", "pykwalify")

# PyRadiomics logs every step, and warns on every extraction about a deprecated GLCM feature: errors only.
radiomics.setVerbosity(logging.ERROR)


class InvalidParameters(ValueError):
    """Parameters PyRadiomics refuses; the message names the offending key."""


@cache
def _builtin_file(name: str) -> dict[str, Any]:
    if name not in BUILTIN_PRESETS:
        raise KeyError(f"no built-in radiomics preset {name!r}; built-in: {', '.join(BUILTIN_PRESETS)}")
    loaded = yaml.safe_load((PRESETS_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def builtin_preset(name: str) -> dict[str, Any]:
    """The full PyRadiomics parameter dict of a built-in preset (a copy: callers may change it)."""
    return copy.deepcopy(_builtin_file(name))


def validate_parameters(parameters: Any) -> dict[str, Any]:
    """Check ``parameters`` against PyRadiomics' own schema and its image-type and feature names.

    Returns them unchanged; raises :class:`InvalidParameters` whose message names what is wrong.
    """
    if not isinstance(parameters, dict) or not parameters:
        raise InvalidParameters("parameters: a non-empty mapping of PyRadiomics sections is required")
    schema_file, schema_funcs = radiomics.getParameterValidationFiles()
    try:  # the schema's own functions (image types, feature names) raise ValueError
        pykwalify.core.Core(source_data=parameters, schema_files=[schema_file], extensions=[schema_funcs]).validate()
    except pykwalify.errors.PyKwalifyException as error:
        raise InvalidParameters(_schema_message(error)) from None
    except (ValueError, TypeError, KeyError) as error:
        raise InvalidParameters(str(error)) from None
    try:  # what the schema leaves open is checked when an extractor loads the parameters
        featureextractor.RadiomicsFeatureExtractor(copy.deepcopy(parameters))
    except (ValueError, TypeError, KeyError) as error:
        raise InvalidParameters(str(error)) from None
    return parameters


def _schema_message(error: pykwalify.errors.PyKwalifyException) -> str:
    """pykwalify's "Schema validation failed:" then one "- <problem>. Path: '<key>'" line per problem."""
    lines = str(getattr(error, "msg", "") or error).splitlines()
    problems = [line.strip(" -.") for line in lines if line.strip(" -.") and not line.endswith("failed:")]
    return "; ".join(problems) or "invalid PyRadiomics parameters"


def _effective(extractor: featureextractor.RadiomicsFeatureExtractor) -> dict[str, Any]:
    settings = {key: value for key, value in extractor.settings.items() if key not in ("label", "additionalInfo")}
    return copy.deepcopy(
        {"imageType": extractor.enabledImagetypes, "featureClass": extractor.enabledFeatures, "setting": settings}
    )


def effective_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """Everything an extraction with ``parameters`` uses, PyRadiomics' defaults (preCrop, padDistance...) included."""
    return _effective(featureextractor.RadiomicsFeatureExtractor(copy.deepcopy(parameters)))


def extract_features(
    image: sitk.Image, mask: sitk.Image, parameters: dict[str, Any], label: int = 1
) -> dict[str, float]:
    """PyRadiomics features of the voxels of ``mask`` equal to ``label``, diagnostics dropped, values as floats."""
    return extract_with_parameters(image, mask, parameters, label)[0]


def extract_with_parameters(
    image: sitk.Image, mask: sitk.Image, parameters: dict[str, Any], label: int = 1
) -> tuple[dict[str, float], dict[str, Any]]:
    """The features, and the effective parameters of the very extractor that computed them (see above)."""
    extractor = featureextractor.RadiomicsFeatureExtractor(copy.deepcopy(parameters))
    result = extractor.execute(image, mask, label=label)
    features = {name: float(value) for name, value in result.items() if not name.startswith("diagnostics_")}
    return features, _effective(extractor)


def image_from_array(array: np.ndarray, affine_ras: np.ndarray) -> sitk.Image:
    """A (slice, row, column) array with its NIfTI affine ((column, row, slice) -> RAS mm) as a SimpleITK image.

    SimpleITK works in LPS: the first two axes of the affine change sign.
    """
    lps = np.diag([-1.0, -1.0, 1.0]) @ np.asarray(affine_ras, dtype=float)[:3, :]
    spacing = np.linalg.norm(lps[:, :3], axis=0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing([float(v) for v in spacing])
    image.SetDirection([float(v) for v in (lps[:, :3] / spacing).ravel()])
    image.SetOrigin([float(v) for v in lps[:, 3]])
    return image


def image_identity(image: sitk.Image) -> dict[str, Any]:
    """A sha256 of the decoded voxels (with their type) and the geometry: what identifies an input exactly."""
    voxels = np.ascontiguousarray(sitk.GetArrayViewFromImage(image))
    digest = hashlib.sha256()
    digest.update(f"{voxels.dtype.str}{voxels.shape}".encode())
    digest.update(voxels.data)  # the buffer itself: no copy
    return {
        "sha256": digest.hexdigest(),
        "pixel_type": image.GetPixelIDTypeAsString(),
        "size": list(image.GetSize()),
        "spacing": list(image.GetSpacing()),
        "origin": list(image.GetOrigin()),
        "direction": list(image.GetDirection()),
    }


@cache
def library_versions() -> dict[str, str]:
    return installed_versions(LIBRARIES)
