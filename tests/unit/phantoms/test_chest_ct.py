"""Chest CT phantom: HU ranges, lungs, nodules and ground glass against clinical.json."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from awesomme.phantoms import Patient, Phantom, synthesize
from awesomme.phantoms.chest_ct import ChestAnatomy, _sample_ggo_areas, _sample_nodules
from awesomme.phantoms.phantom import rng_for

SHAPE = (40, 192, 192)


def _parenchyma_mean(phantom_volume: np.ndarray, lung: np.ndarray, exclude: np.ndarray) -> float:
    # vessels, airway walls and lesions are denser than -500 HU; what is left is parenchyma
    sel = (lung > 0) & (exclude == 0) & (phantom_volume < -500)
    return float(phantom_volume[sel].mean())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_lungs_are_about_minus_850_hu(seed: int) -> None:
    phantom = synthesize("chest-ct", seed, SHAPE)
    lung, nodule, ggo = (phantom.truth[k] for k in ("lung", "nodule", "ggo"))
    assert lung.sum() > 0.05 * lung.size
    mean = _parenchyma_mean(phantom.volume, lung, nodule | ggo)
    assert -950 <= mean <= -750, mean
    # both lungs: lung voxels on each side of the body midline
    cols = np.nonzero(lung)[2]
    assert (cols < SHAPE[2] // 2).sum() > 0.2 * cols.size and (cols > SHAPE[2] // 2).sum() > 0.2 * cols.size
    # outside the body is air, and nothing leaves the 12-bit stored range
    assert phantom.volume.dtype == np.int16
    assert phantom.volume.min() >= -1024 and phantom.volume.max() <= 3071
    assert np.median(phantom.volume[:, :3, :3]) < -950
    # bone is in there (ribs, spine): HU well above soft tissue
    assert (phantom.volume > 300).sum() > 100


def test_default_patient_lungs(default_patients: dict[str, Patient], default_phantoms: dict[str, Phantom]) -> None:
    patient = default_patients["chest-ct"]
    phantom = default_phantoms["chest-ct"]
    assert phantom.grid.shape == patient.shape
    mean = _parenchyma_mean(phantom.volume, phantom.truth["lung"], phantom.truth["nodule"] | phantom.truth["ggo"])
    assert -950 <= mean <= -750, mean
    # truth masks are disjoint where they should be, and lesions are inside the lungs
    assert not (phantom.truth["nodule"] & phantom.truth["ggo"]).any()
    for name in ("nodule", "ggo"):
        assert np.all(phantom.truth["lung"][phantom.truth[name] > 0] == 1)


def _nodule_checks(phantom: Phantom) -> int:
    grid = phantom.grid
    pixel = grid.spacing[1]
    nodules = phantom.clinical["nodules"]
    assert phantom.clinical["n_nodules"] == len(nodules) <= 3
    for nodule in nodules:
        assert nodule["type"] in ("solid", "part-solid", "ggo")
        assert 4.0 * 0.8**3 <= nodule["diameter_mm"] <= 30.0
        k, j, i = nodule["centre_voxel"]
        assert list(grid.voxel_to_lps((k, j, i))) == nodule["centre_mm"]
        mask = phantom.truth["ggo" if nodule["type"] == "ggo" else "nodule"]
        assert mask[k, j, i] == 1
        labelled, _ = ndi.label(mask[k])
        component = labelled == labelled[j, i]
        measured = 2.0 * np.sqrt(component.sum() * pixel * pixel / np.pi)
        # area-equivalent diameter in the centre slice: within two voxels of the nominal one
        assert abs(measured - nodule["diameter_mm"]) <= 2 * pixel, (nodule, measured)
    # masks contain nothing but the listed nodules (and ground-glass areas)
    solid = [n for n in nodules if n["type"] != "ggo"]
    _, count = ndi.label(phantom.truth["nodule"])
    assert count >= len(solid) and (count == 0) == (len(solid) == 0)
    return len(nodules)


def test_nodules_match_clinical() -> None:
    counts = [_nodule_checks(synthesize("chest-ct", seed, SHAPE)) for seed in range(6)]
    assert min(counts) == 0 and max(counts) >= 2  # 0-3 nodules, depending on the seed


def test_nodule_types_and_ground_glass_occur() -> None:
    """Across seeds: every nodule type, ground-glass areas, and patients without any lesion."""
    types: set[str] = set()
    ggo_areas = 0
    lesion_free = []
    for seed in range(40):
        anat = ChestAnatomy(rng_for("chest-ct", seed, "anatomy"))
        lesion_rng = rng_for("chest-ct", seed, "lesions")  # the same draws synthesize() makes
        nodules = _sample_nodules(anat, lesion_rng)
        areas = _sample_ggo_areas(anat, lesion_rng)
        types |= {n.nodule_type for n in nodules}
        ggo_areas += len(areas)
        if not nodules and not areas:
            lesion_free.append(seed)
    assert types == {"solid", "part-solid", "ggo"}
    assert ggo_areas > 0 and lesion_free
    # every structure is written even when absent: empty masks
    phantom = synthesize("chest-ct", lesion_free[0], (12, 64, 64))
    assert phantom.clinical["nodules"] == [] and phantom.clinical["ggo_areas"] == []
    assert phantom.truth["nodule"].sum() == 0 and phantom.truth["ggo"].sum() == 0


def test_default_nodules_match_clinical(default_phantoms: dict[str, Phantom]) -> None:
    _nodule_checks(default_phantoms["chest-ct"])


def test_default_grids_over_seeds() -> None:
    for seed in range(40):
        grid = ChestAnatomy(rng_for("chest-ct", seed, "anatomy")).grid(None)
        nz, ny, nx = grid.shape
        dz, dy, dx = grid.spacing
        assert (ny, nx) == (512, 512) and 0.6 <= dx == dy <= 0.9
        assert 30 <= nz <= 120 and 1.25 <= dz <= 5.0


def test_large_override_is_fast_enough_to_benchmark() -> None:
    """The benchmark shape must at least build; the time is reported, not asserted (CI machines vary)."""
    phantom = synthesize("chest-ct", 0, (2, 1024, 1024))
    assert phantom.volume.shape == (2, 1024, 1024)
    assert phantom.grid.spacing[1] == phantom.grid.spacing[2] < 0.5
