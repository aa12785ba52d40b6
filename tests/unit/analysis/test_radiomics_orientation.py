"""Radiomics features do not depend on how a series' slices were stored: the same physical image and mask, stored
with the slices reversed, the rows flipped or the columns flipped, give the same 107 ``ibsi-original`` features,
equal to bare PyRadiomics on the canonical volume."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import SimpleITK as sitk
from radiomics import featureextractor
from scipy import ndimage

from awesomme.analysis.radiomics import (
    CANONICAL_ORIENTATION,
    builtin_preset,
    canonical,
    extract_with_parameters,
    image_from_array,
)

SHAPE = (14, 40, 36)  # (slice, row, column)


def _volume() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured MR-like volume, an irregular lesion, an oblique anisotropic affine ((column, row, slice) -> RAS)."""
    rng = np.random.default_rng(7)
    image = ndimage.gaussian_filter(rng.normal(300, 60, SHAPE), 1.2).astype(np.int16)
    z, y, x = np.indices(SHAPE)
    lesion = ((z - 6.5) / 4.5) ** 2 + ((y - 19) / 11) ** 2 + ((x - 17) / 8) ** 2 < 1
    lesion &= ~(((y - 12) / 6) ** 2 + ((x - 11) / 5) ** 2 < 1)  # a bite out of it: not symmetric
    image[lesion] += 140
    # a speckled outline, as drawn masks have: voxels touching only by an edge or a corner, where marching cubes
    # must choose how to join them (the choice follows the array's axes)
    lesion &= rng.random(SHAPE) > 0.15
    angle = np.deg2rad(12)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([0.7, 0.8, 3.0])
    affine[:3, 3] = (-12.0, 30.0, -40.0)
    return image, lesion.astype(np.uint8), affine


def _stored(array: np.ndarray, affine: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The same physical volume with array ``axis`` (0 slice, 1 row, 2 column) stored the other way round."""
    flipped = np.flip(array, axis)
    column = 2 - axis  # the affine's columns are (column, row, slice)
    moved = affine.copy()
    moved[:3, 3] = affine[:3, 3] + affine[:3, column] * (array.shape[axis] - 1)
    moved[:3, column] = -affine[:3, column]
    return np.ascontiguousarray(flipped), moved


def _features(image: np.ndarray, mask: np.ndarray, affine: np.ndarray) -> dict[str, float]:
    return extract_with_parameters(image_from_array(image, affine), image_from_array(mask, affine), _preset())[0]


def _preset() -> dict:
    return copy.deepcopy(builtin_preset("ibsi-original"))


@pytest.fixture(scope="module")
def reference() -> dict[str, float]:
    image, mask, affine = _volume()
    return _features(image, mask, affine)


@pytest.mark.parametrize("axis", [0, 1, 2], ids=["slices reversed", "rows flipped", "columns flipped"])
def test_the_same_volume_stored_the_other_way_round_gives_the_same_features(
    reference: dict[str, float], axis: int
) -> None:
    image, mask, affine = _volume()
    flipped_image, flipped_affine = _stored(image, affine, axis)
    flipped_mask, _ = _stored(mask, affine, axis)
    # the same physical image: voxel (0, 0, 0) of the flipped one lies where the original's last one along axis lies
    assert not np.array_equal(flipped_image, image)
    features = _features(flipped_image, flipped_mask, flipped_affine)
    assert len(features) == len(reference) == 107
    for name, value in reference.items():
        assert features[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name


def test_the_features_are_bare_pyradiomics_on_the_canonical_volume(reference: dict[str, float]) -> None:
    image, mask, affine = _volume()
    canonical_image, canonical_mask = (
        canonical(image_from_array(image, affine)),
        canonical(image_from_array(mask, affine)),
    )
    assert sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(canonical_image.GetDirection()) == (
        CANONICAL_ORIENTATION
    )
    bare = featureextractor.RadiomicsFeatureExtractor(_preset()).execute(canonical_image, canonical_mask, label=1)
    expected = {name: float(value) for name, value in bare.items() if not name.startswith("diagnostics_")}
    assert expected == reference
    _, effective = extract_with_parameters(image_from_array(image, affine), image_from_array(mask, affine), _preset())
    assert effective["canonicalOrientation"] == CANONICAL_ORIENTATION


def test_without_the_canonical_orientation_mesh_features_would_differ() -> None:
    """Why the orientation is fixed: bare PyRadiomics on the stored arrays gives another MeshVolume (and with it
    Sphericity and SurfaceVolumeRatio) for each way round the same volume is stored."""
    image, mask, affine = _volume()
    extractor = featureextractor.RadiomicsFeatureExtractor(_preset())
    as_stored = extractor.execute(image_from_array(image, affine), image_from_array(mask, affine), label=1)
    for axis in (0, 1, 2):
        flipped_image, flipped_affine = _stored(image, affine, axis)
        flipped_mask, _ = _stored(mask, affine, axis)
        flipped = extractor.execute(
            image_from_array(flipped_image, flipped_affine), image_from_array(flipped_mask, flipped_affine), label=1
        )
        for name in ("MeshVolume", "Sphericity", "SurfaceVolumeRatio"):
            stored, other = float(as_stored[f"original_shape_{name}"]), float(flipped[f"original_shape_{name}"])
            assert abs(stored - other) > 1e-3 * abs(stored), (axis, name)
