"""Presets, parameter validation, images with their geometry, identities, and the feature-set CSV layout."""

from __future__ import annotations

import math

import numpy as np
import pytest

from awesomme.analysis.radiomics import (
    BUILTIN_PRESETS,
    InvalidParameters,
    builtin_preset,
    effective_parameters,
    extract_features,
    extract_with_parameters,
    image_from_array,
    image_identity,
    library_versions,
    validate_parameters,
)
from awesomme.analysis.radiomics_csv import read_feature_csv, write_feature_csv
from awesomme.core.errors import InvalidInput
from awesomme.dicom.volumes import LPS_TO_RAS


def test_builtin_presets_are_valid_and_copies() -> None:
    assert BUILTIN_PRESETS == ("ibsi-original", "osteosarcoma-mr")
    for name in BUILTIN_PRESETS:
        validate_parameters(builtin_preset(name))
    changed = builtin_preset("ibsi-original")
    changed["setting"]["binWidth"] = 1
    assert builtin_preset("ibsi-original")["setting"]["binWidth"] == 25
    mr = builtin_preset("osteosarcoma-mr")
    assert set(mr["imageType"]) == {"Original", "LoG", "Wavelet"}
    assert mr["imageType"]["LoG"]["sigma"] == [1.0, 2.0, 3.0]
    assert mr["setting"]["preCrop"] is True
    with pytest.raises(KeyError):
        builtin_preset("no-such-preset")


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"setting": {"binWidht": 5}}, "binWidht"),
        ({"setting": {"binWidth": -1}}, "/setting/binWidth"),
        ({"setting": {"binWidth": "wide"}}, "/setting/binWidth"),
        ({"imageType": {"Sharpen": {}}}, "Sharpen"),
        ({"featureClass": {"glcm": ["NoSuchFeature"]}}, "NoSuchFeature"),
        ({"featureClass": {"texture": []}}, "texture"),
        ({"setting": {"interpolator": "sitkMagic"}}, "sitkMagic"),
        ({}, "non-empty"),
        (["not", "a", "mapping"], "mapping"),
    ],
)
def test_invalid_parameters_are_refused_naming_what_is_wrong(parameters: object, named: str) -> None:
    with pytest.raises(InvalidParameters, match=named):
        validate_parameters(parameters)


def test_effective_parameters_spell_out_pyradiomics_defaults() -> None:
    effective = effective_parameters({"setting": {"binWidth": 10}})
    assert effective["setting"]["binWidth"] == 10
    assert effective["setting"]["preCrop"] is False and effective["setting"]["padDistance"] == 5
    assert effective["imageType"] == {"Original": {}}
    assert "glcm" in effective["featureClass"]


def test_an_array_with_its_nifti_affine_keeps_its_geometry_in_lps() -> None:
    # Columns along -x (LPS +x), rows along +z, slices along -y: an oblique-free but permuted grid.
    lps = np.array([[0.7, 0, 0, 10.0], [0, 0, -2.5, 20.0], [0, 0.8, 0, 30.0], [0, 0, 0, 1]])
    array = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5)
    image = image_from_array(array, LPS_TO_RAS @ lps)
    assert image.GetSize() == (5, 4, 3)
    assert image.GetSpacing() == pytest.approx((0.7, 0.8, 2.5))
    for index in [(0, 0, 0), (4, 3, 2), (1, 2, 1)]:
        expected = lps @ [*index, 1]
        assert image.TransformIndexToPhysicalPoint(index) == pytest.approx(tuple(expected[:3]))
        assert image.GetPixel(index) == array[index[2], index[1], index[0]]


def test_the_identity_changes_with_any_voxel_type_or_geometry() -> None:
    array = np.zeros((2, 3, 4), dtype=np.int16)
    base = image_identity(image_from_array(array, np.eye(4)))
    assert base["size"] == [4, 3, 2] and base["pixel_type"] == "16-bit signed integer"
    changed = array.copy()
    changed[1, 2, 3] = 1
    assert image_identity(image_from_array(changed, np.eye(4)))["sha256"] != base["sha256"]
    assert image_identity(image_from_array(array.astype(np.int32), np.eye(4)))["sha256"] != base["sha256"]
    moved = image_identity(image_from_array(array, np.diag([1.0, 1.0, 2.0, 1.0])))
    assert moved["sha256"] == base["sha256"] and moved["spacing"] != base["spacing"]


def test_extraction_returns_floats_without_diagnostics_and_its_parameters() -> None:
    rng = np.random.default_rng(7)
    array = rng.integers(0, 200, size=(8, 24, 24)).astype(np.int16)
    mask = np.zeros(array.shape, np.uint8)
    mask[2:6, 6:18, 6:18] = 2
    image, roi = image_from_array(array, np.eye(4)), image_from_array(mask, np.eye(4))
    parameters = {"featureClass": {"firstorder": ["Mean", "Maximum"]}, "setting": {"binWidth": 10}}
    features, effective = extract_with_parameters(image, roi, parameters, label=2)
    assert features == {
        "original_firstorder_Mean": pytest.approx(array[mask == 2].mean()),
        "original_firstorder_Maximum": float(array[mask == 2].max()),
    }
    assert all(isinstance(value, float) for value in features.values())
    assert effective["setting"]["binWidth"] == 10
    assert extract_features(image, roi, parameters, label=2) == features
    assert library_versions()["pyradiomics-bhklab"]


def test_the_csv_round_trips_features_and_flattened_provenance() -> None:
    identity = {"feature_set_id": 7, "series_uid": "1.2.3", "preset": "ibsi-original@1", "tag": 'a,b "quoted"'}
    provenance = {"image": {"sha256": "ab" * 32, "size": [4, 3, 2]}, "parameters": {"imageType": {"Original": {}}}}
    features = {"original_firstorder_Mean": 1 / 3, "original_glcm_Idmn": -2.5e-17, "original_ngtdm_Busyness": None}
    row = read_feature_csv(write_feature_csv(identity, provenance, features).encode())
    assert row.features["original_firstorder_Mean"] == 1 / 3  # repr: no digit lost
    assert row.features["original_glcm_Idmn"] == -2.5e-17
    assert math.isnan(row.features["original_ngtdm_Busyness"])
    assert row.fields["tag"] == 'a,b "quoted"'
    assert row.fields["provenance.image.sha256"] == "ab" * 32
    assert row.fields["provenance.image.size"] == "[4, 3, 2]"
    assert row.fields["provenance.parameters.imageType.Original"] == "{}"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "exactly one row"),
        (b"original_firstorder_Mean\n1.0\n2.0\n", "exactly one row"),
        (b"original_firstorder_Mean,original_glcm_Idmn\n1.0\n", "columns"),
        (b"original_firstorder_Mean\nabc\n", "not a number"),
        (b"original_firstorder_Mean\ninf\n", "infinite"),
        (b"feature_set_id,tag\n1,x\n", "no feature"),
        (b"a,a\n1,2\n", "twice"),
        (b"\xff\xfe\x00garbage", "readable"),
    ],
)
def test_a_corrupt_csv_is_a_clear_422(data: bytes, says: str) -> None:
    with pytest.raises(InvalidInput, match=says) as error:
        read_feature_csv(data)
    assert error.value.status_code == 422
