"""Osteosarcoma knee MR phantom: tumour, bone, intensities and the response signal."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from awesomme.phantoms import Phantom, synthesize
from awesomme.phantoms.osteosarcoma_mr import KneeAnatomy
from awesomme.phantoms.phantom import rng_for

SHAPE = (20, 128, 128)


@pytest.mark.parametrize("seed", range(8))
def test_tumour_grows_from_bone(seed: int) -> None:
    phantom = synthesize("osteosarcoma-mr", seed, SHAPE)
    tumour, bone = phantom.truth["tumour"].astype(bool), phantom.truth["bone"].astype(bool)
    assert tumour.any() and bone.any()
    assert not (tumour & bone).any()  # bone excludes what the tumour replaced
    # in or next to bone: a 2-voxel in-plane dilation of the tumour reaches bone
    ring = ndi.binary_dilation(tumour, structure=np.ones((1, 5, 5), bool))
    assert (ring & bone).sum() > 0
    # the tumour's centre lies within the femur's outline of that slice (metaphysis)
    anat = KneeAnatomy(rng_for("osteosarcoma-mr", seed, "anatomy"))
    cx, cy, cz = anat.tumour_c
    a, b = anat.femur_axes(cz)
    fx, fy = anat.femur_c
    assert ((cx - fx) / a) ** 2 + ((cy - fy) / b) ** 2 < 1
    clinical = phantom.clinical
    assert clinical["response"] in ("good", "poor")
    assert 0.0 < clinical["necrosis_fraction"] < 1.0
    assert 0.0 < clinical["heterogeneity"] <= 0.5
    volume_ml = tumour.sum() * phantom.grid.voxel_volume_mm3 / 1000
    assert clinical["tumour_volume_ml"] == pytest.approx(volume_ml)


def test_image_is_mr_like(default_phantoms: dict[str, Phantom]) -> None:
    phantom = default_phantoms["osteosarcoma-mr"]
    v = phantom.volume.astype(np.float64)
    assert phantom.volume.dtype == np.uint16 and v.max() <= 4095
    bone = phantom.truth["bone"] > 0
    tumour = phantom.truth["tumour"] > 0
    background = v[:, :4, :4]
    # Rician background: positive, small, never a flat zero
    assert 0 < background.mean() < 0.1 * np.percentile(v, 99)
    # tumour is heterogeneous (necrosis bright, mineral dark): wide spread of intensities
    assert v[tumour].std() / v[tumour].mean() > 0.15
    # bone (dark cortex + bright-ish marrow) differs from the tumour on average
    assert abs(v[bone].mean() - v[tumour].mean()) > 0.05 * v[tumour].mean()


def test_response_is_linked_to_necrosis_and_texture() -> None:
    records = [synthesize("osteosarcoma-mr", seed, (16, 64, 64)).clinical for seed in range(20)]
    good = [r for r in records if r["response"] == "good"]
    poor = [r for r in records if r["response"] == "poor"]
    assert good and poor
    assert np.mean([r["necrosis_fraction"] for r in good]) > np.mean([r["necrosis_fraction"] for r in poor])
    assert np.mean([r["heterogeneity"] for r in good]) > np.mean([r["heterogeneity"] for r in poor])
    # learnable but not trivial: the groups overlap
    assert min(r["necrosis_fraction"] for r in good) < max(r["necrosis_fraction"] for r in poor)


def test_default_grids_over_seeds() -> None:
    for seed in range(40):
        anat = KneeAnatomy(rng_for("osteosarcoma-mr", seed, "anatomy"))
        grid = anat.grid(None)
        nz, ny, nx = grid.shape
        dz, dy, dx = grid.spacing
        assert (ny, nx) == (256, 256) and 0.6 <= dx == dy <= 0.8
        assert 16 <= nz <= 60 and 3.5 <= dz <= 4.5
        # the tumour centre is inside the imaged slab
        assert grid.z[0] <= anat.tumour_c[2] <= grid.z[-1]
