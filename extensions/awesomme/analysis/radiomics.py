"""Radiomics features of one labelled region with PyRadiomics, the built-in presets and what identifies the inputs.

PyRadiomics comes from the ``pyradiomics-bhklab`` distribution (``import radiomics``); never the ``pyradiomics``
package. Feature names are PyRadiomics' (``<image type>_<feature class>_<feature>``), which map onto IBSI terms.

Every image and mask is put in one canonical orientation before extraction (``CANONICAL_ORIENTATION``, with
SimpleITK's ``DICOMOrient``: the array axes permuted and flipped so that they run as close as possible to the
patient's Left, Posterior and Superior, no resampling). PyRadiomics' mesh features (MeshVolume, Sphericity,
SurfaceVolumeRatio) depend on the array's axis order; in one orientation the same physical volume gives the same
features however its slices were stored (reversed, rows or columns flipped). The effective parameters record it.
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
    "CANONICAL_ORIENTATION",
    "InvalidParameters",
    "builtin_preset",
    "canonical",
    "check_bounds",
    "check_work",
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


# Upper bounds on the knobs that multiply PyRadiomics' work or memory (a texture matrix has gray levels squared
# cells per distance and angle; every LoG sigma, wavelet level or LBP level is one more filtered image).
MAX_GRAY_LEVELS = 1024  # binCount, and the bins binWidth makes over the region's intensities
MAX_LOG_SIGMAS = 8
MAX_LOG_SIGMA_MM = 20.0
MAX_WAVELET_LEVEL = 3  # ``level`` and ``start_level`` (each level is eight more images)
MAX_DISTANCES = 5
MAX_DISTANCE = 10
MAX_PAD_DISTANCE = 50
MAX_LBP2D_SAMPLES = 36
MAX_LBP2D_RADIUS = 10.0
MAX_LBP3D_LEVELS = 3
MAX_LBP3D_ICOSPHERE_SUBDIVISION = 2
MIN_RESAMPLED_SPACING_MM = 0.1
MAX_REGION_VOXELS = 32 * 1024**2  # the cropped region after resampling
# Array axes of every extraction's input: i towards the patient's Left, j Posterior, k Superior (DICOM's LPS).
CANONICAL_ORIENTATION = "LPS"


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
    check_bounds(parameters)
    return parameters


def _settings_of(parameters: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, settings) of the global settings and of each image type's own (PyRadiomics merges them)."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(parameters.get("setting"), dict):
        found.append(("setting", parameters["setting"]))
    for name, own in (parameters.get("imageType") or {}).items():
        if isinstance(own, dict):
            found.append((f"imageType.{name}", own))
    return found


def _over(where: str, key: str, value: Any, limit: float, minimum: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return  # the schema has checked its type
    if value > limit or (minimum is not None and value < minimum):
        bounds = f"at most {limit}" if minimum is None else f"at least {minimum}" if limit == float("inf") else ""
        bounds = bounds or f"from {minimum} to {limit}"
        raise InvalidParameters(f"{where}.{key} {value} is out of bounds: {bounds}")


def _over_list(where: str, key: str, values: Any, max_count: int, limit: float) -> None:
    if not isinstance(values, list):
        return
    if len(values) > max_count:
        raise InvalidParameters(f"{where}.{key} has {len(values)} values: at most {max_count}")
    for value in values:
        _over(where, key, value, limit)


def check_bounds(parameters: dict[str, Any]) -> None:
    """Refuse knobs over the bounds above; the message names the knob (``setting.binCount``...)."""
    for where, settings in _settings_of(parameters):
        scalar_limits = {
            "binCount": MAX_GRAY_LEVELS,
            "level": MAX_WAVELET_LEVEL,
            "start_level": MAX_WAVELET_LEVEL,
            "padDistance": MAX_PAD_DISTANCE,
            "lbp2DSamples": MAX_LBP2D_SAMPLES,
            "lbp2DRadius": MAX_LBP2D_RADIUS,
            "lbp3DLevels": MAX_LBP3D_LEVELS,
            "lbp3DIcosphereSubdivision": MAX_LBP3D_ICOSPHERE_SUBDIVISION,
        }
        for key, limit in scalar_limits.items():
            _over(where, key, settings.get(key), limit)
        _over_list(where, "sigma", settings.get("sigma"), MAX_LOG_SIGMAS, MAX_LOG_SIGMA_MM)
        _over_list(where, "distances", settings.get("distances"), MAX_DISTANCES, MAX_DISTANCE)
        spacing = settings.get("resampledPixelSpacing")
        if isinstance(spacing, list):
            for value in spacing:
                if value != 0:  # 0 keeps the original spacing of that axis
                    _over(where, "resampledPixelSpacing", value, float("inf"), MIN_RESAMPLED_SPACING_MM)


def check_work(array: np.ndarray, mask: np.ndarray, spacing_mm: tuple[float, ...], parameters: dict[str, Any]) -> None:
    """Bounds that depend on the data: the gray levels a ``binWidth`` makes over the region, and the region's size
    after resampling. ``array`` and ``mask`` are (slice, row, column); ``spacing_mm`` is (column, row, slice)."""
    settings = parameters.get("setting") if isinstance(parameters.get("setting"), dict) else {}
    assert isinstance(settings, dict)
    if settings.get("binCount") is None:
        width = float(settings.get("binWidth") or 25)
        values = array[mask > 0].astype(np.float64)
        if settings.get("normalize"):  # PyRadiomics normalises over the whole image, then scales
            std = float(array.std()) or 1.0
            values = values / std * float(settings.get("normalizeScale") or 1)
        levels = int(np.ceil((values.max() - values.min()) / width)) + 1 if values.size else 1
        if levels > MAX_GRAY_LEVELS:
            raise InvalidParameters(
                f"setting.binWidth {width:g} makes {levels} gray levels in this region: at most {MAX_GRAY_LEVELS}"
                " (use a larger binWidth, or binCount)"
            )
    resampled = settings.get("resampledPixelSpacing")
    if isinstance(resampled, list) and len(resampled) == 3:
        where = np.argwhere(mask > 0)
        if where.size:
            pad = int(settings.get("padDistance", 5) or 0)
            extent = (where.max(axis=0) - where.min(axis=0) + 1 + 2 * pad)[::-1]  # column, row, slice
            voxels = 1.0
            for count, old, new in zip(extent, spacing_mm, resampled, strict=True):
                voxels *= count * (old / new if new else 1.0)
            if voxels > MAX_REGION_VOXELS:
                raise InvalidParameters(
                    f"setting.resampledPixelSpacing {resampled} makes a region of {voxels:.3g} voxels:"
                    f" at most {MAX_REGION_VOXELS}"
                )


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
    """The features of the image and mask in the canonical orientation, and the effective parameters of the very
    extractor that computed them (see above), the orientation among them."""
    extractor = featureextractor.RadiomicsFeatureExtractor(copy.deepcopy(parameters))
    result = extractor.execute(canonical(image), canonical(mask), label=label)
    features = {name: float(value) for name, value in result.items() if not name.startswith("diagnostics_")}
    return features, {**_effective(extractor), "canonicalOrientation": CANONICAL_ORIENTATION}


def canonical(image: sitk.Image) -> sitk.Image:
    """``image`` with its array axes in ``CANONICAL_ORIENTATION`` (a permutation and flips of its voxels, the same
    physical image)."""
    return sitk.DICOMOrient(image, CANONICAL_ORIENTATION)


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
