"""Training data preparation: same pre-processing as serving, masks pooled like the image, seed guard."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from awesomme.inference.predict import downsample, preprocess
from awesomme.training.data import (
    NegativeMix,
    check_training_seeds,
    downsample_mask,
    load_patients,
    network_input,
    patient_arrays,
    sample_patches,
    sample_slices,
)
from awesomme.training.models import MODELS, base_config


def _volume(shape: tuple[int, int, int] = (6, 16, 16)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    volume = rng.integers(-1000, 400, size=shape).astype(np.int16)
    mask = np.zeros(shape, np.uint8)
    mask[2:4, 4:10, 5:11] = 1
    return volume, mask


def test_network_input_is_what_predict_feeds() -> None:
    config = base_config(MODELS["lung_volume_ct"])
    volume, _ = _volume((5, 18, 18))
    expected = downsample(preprocess(volume, config), config.inference.downsample)
    got = network_input(volume, config)
    assert got.shape == (1, 5, 5, 5)  # ceil(18 / 4)
    assert torch.equal(got, expected)
    assert float(got.min()) >= 0.0 and float(got.max()) <= 1.0


def test_downsample_mask_keeps_half_covered_voxels() -> None:
    mask = np.zeros((2, 4, 4), np.uint8)
    mask[:, :2, :2] = 1  # one full 2x2 block
    mask[:, 2, 2] = 1  # a quarter of another block
    small = downsample_mask(mask, (1, 2, 2))
    assert small.shape == (2, 2, 2)
    assert small[:, 0, 0].all() and not small[:, 1, 1].any()
    assert downsample_mask(mask, (1, 1, 1)).sum() == mask.sum()


def test_patient_arrays_shapes_and_foreground() -> None:
    config = base_config(MODELS["lung_nodule_ct"])
    volume, mask = _volume()
    patient = patient_arrays(volume, mask, config, seed=3, region_mask=np.ones_like(mask))
    assert patient.image.shape == patient.label.shape == (6, 8, 8)
    assert patient.image.dtype == np.float16
    assert len(patient.foreground) == int(patient.label.sum()) > 0
    assert len(patient.region) > 0


def test_samplers_shapes_and_positive_fraction() -> None:
    config = base_config(MODELS["lung_nodule_ct"])
    volume, mask = _volume((6, 40, 40))
    patients = [patient_arrays(volume, mask, config)]
    images, labels = sample_patches(patients, (4, 8, 8), 6, np.random.default_rng(1), positive_fraction=1.0)
    assert images.shape == labels.shape == (6, 1, 4, 8, 8)
    assert images.dtype == torch.float32 and labels.dtype == torch.int64
    assert all(bool(label.any()) for label in labels)  # every patch centred near the foreground
    slices, slice_labels = sample_slices(patients, (20, 20), 3, np.random.default_rng(1), positive_fraction=1.0)
    assert slices.shape == slice_labels.shape == (3, 1, 20, 20)


def test_sampling_is_deterministic() -> None:
    config = base_config(MODELS["lung_nodule_ct"])
    volume, mask = _volume((6, 40, 40))
    patients = [patient_arrays(volume, mask, config)]
    first = sample_patches(patients, (4, 8, 8), 4, np.random.default_rng(7), flip=True)
    second = sample_patches(patients, (4, 8, 8), 4, np.random.default_rng(7), flip=True)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_patches_are_padded_when_the_volume_is_small() -> None:
    config = base_config(MODELS["lung_nodule_ct"])
    volume, mask = _volume((3, 8, 8))
    patients = [patient_arrays(volume, mask, config)]
    images, labels = sample_patches(patients, (4, 8, 8), 2, np.random.default_rng(0))
    assert images.shape == (2, 1, 4, 8, 8)
    assert labels[:, :, 3:].sum() == 0


def test_evaluation_seeds_are_refused() -> None:
    assert check_training_seeds(range(3)) == [0, 1, 2]
    with pytest.raises(ValueError, match="reserved for evaluation"):
        check_training_seeds([1, 50000])
    for spec in MODELS.values():
        assert max(spec.train_seeds) < 50000


def test_bright_voxels_in_the_region_become_hard_negative_centres() -> None:
    config = base_config(MODELS["lung_nodule_ct"])
    volume = np.full((4, 16, 16), -850, np.int16)
    region = np.zeros(volume.shape, np.uint8)
    region[:, :, :8] = 1  # "lung" on the left
    mask = np.zeros(volume.shape, np.uint8)
    mask[1:3, 2:6, 2:6] = 1
    volume[mask > 0] = 40  # a nodule: bright, but foreground
    volume[:, 10:12, 2:4] = 40  # a "vessel" in the region
    volume[:, :, 12:] = 40  # tissue outside the region
    patient = patient_arrays(volume, mask, config, region_mask=region, bright_min=-500)
    assert {tuple(i) for i in patient.hard} == {(z, 5, 1) for z in range(4)}
    only_hard = NegativeMix(hard=1.0)
    images, labels = sample_patches([patient], (1, 1, 1), 20, np.random.default_rng(0), 0.0, negatives=only_hard)
    assert labels.sum() == 0 and bool((images > 0.7).all())
    anywhere = NegativeMix(anywhere=1.0)
    images, _ = sample_patches([patient], (1, 1, 1), 100, np.random.default_rng(0), 0.0, negatives=anywhere)
    assert 0 < int((images > 0.7).sum()) < 100  # tissue and lung alike


def test_per_lesion_sampling_gives_small_lesions_their_share() -> None:
    config = base_config(MODELS["lung_nodule_ct"])
    mask = np.zeros((4, 64, 64), np.uint8)
    mask[:, 2:30, 2:30] = 1  # a large lesion
    mask[1:3, 50:52, 50:52] = 1  # a small one, brighter to tell them apart
    volume = np.where(mask > 0, 40, -850).astype(np.int16)
    volume[1:3, 50:52, 50:52] = 300
    patient = patient_arrays(volume, mask, config)
    assert sorted(len(lesion) for lesion in patient.lesions) == [2, 4 * 14 * 14]
    images, labels = sample_patches([patient], (1, 1, 1), 200, np.random.default_rng(0), 1.0, per_lesion=True)
    assert labels.all()
    assert 70 < int((images > 0.9).sum()) < 130  # about half the patches on the small lesion


def test_patients_built_in_worker_processes_are_the_same_in_seed_order() -> None:
    spec = MODELS["osteosarcoma_mr"]
    config = base_config(spec)
    alone = load_patients(spec.kind, [3, 1], config, spec.structure)
    side_by_side = load_patients(spec.kind, [3, 1], config, spec.structure, workers=2)
    assert [p.seed for p in side_by_side] == [3, 1]
    for one, other in zip(alone, side_by_side, strict=True):
        assert np.array_equal(one.image, other.image) and np.array_equal(one.label, other.label)
        assert np.array_equal(one.foreground, other.foreground)
