"""A model declared at 1.5 mm isotropic (RAS) served on a 0.7 x 0.7 x 3 mm axial series in DICOM's orientation.

The network needs no training: it erodes the thresholded input with a 5x5x5 box of voxels, so on its own grid it
answers "the points whose 6 mm cube lies in the object" - a known shape in millimetres, which a network run on the
series' own voxels (0.7 x 0.7 x 3 mm) does not give. The truth is drawn on a fine grid and resampled onto the series'
grid with SimpleITK; the offline reference resamples with SimpleITK, runs the same network, and resamples back.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from awesomme.inference.config import SegmentationModelConfig
from awesomme.inference.predict import predict
from tests.unit.inference.conftest import tiny_config

SERIES_SPACING = (0.7, 0.7, 3.0)  # column, row, slice (mm)
SERIES_SHAPE = (22, 100, 96)  # slices, rows, columns
MODEL_SPACING = 1.5
CENTRE = np.array([3.0, -4.0, 8.0])  # RAS mm
SEMI_AXES = np.array([17.0, 12.0, 15.0])  # RAS mm
HALF_BOX = 2 * MODEL_SPACING  # the erosion's 5-voxel box reaches 2 voxels of the model's grid each way
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


class BoxErosion(torch.nn.Module):
    """Two-class logits: class 1 where every voxel of the 5x5x5 box around is brighter than 0.5."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(8.0))  # a parameter, so predict finds the network's device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eroded = -F.max_pool3d(-x, kernel_size=5, stride=1, padding=2)
        margin = (eroded - 0.5) * self.scale
        return torch.cat([torch.zeros_like(margin), margin], dim=1)


def series_affine() -> np.ndarray:
    """An axial series as DICOM writes it: columns run to the patient's left, rows to the back (RAS: -x, -y)."""
    affine = np.diag([-SERIES_SPACING[0], -SERIES_SPACING[1], SERIES_SPACING[2], 1.0])
    extent = np.array([SERIES_SHAPE[2], SERIES_SHAPE[1], SERIES_SHAPE[0]]) * np.array(SERIES_SPACING)
    affine[:3, 3] = CENTRE + np.array([extent[0] / 2, extent[1] / 2, -extent[2] / 2]) + [1.1, -0.6, 0.4]
    return affine


def inside(points: np.ndarray) -> np.ndarray:
    return (((points - CENTRE) / SEMI_AXES) ** 2).sum(axis=-1) <= 1.0


def series_volume(affine: np.ndarray) -> np.ndarray:
    """The ellipsoid's partial-volume fraction per voxel (3 samples per axis), (slice, row, column)."""
    total = np.zeros(SERIES_SHAPE, dtype=np.float32)
    slices, rows, columns = np.meshgrid(*[np.arange(n, dtype=float) for n in SERIES_SHAPE], indexing="ij")
    for offset in np.stack(np.meshgrid(*[[-1 / 3, 0, 1 / 3]] * 3, indexing="ij"), -1).reshape(-1, 3):
        index = np.stack([columns + offset[0], rows + offset[1], slices + offset[2]], axis=-1)
        total += inside(index @ affine[:3, :3].T + affine[:3, 3])
    return (total / 27 * 1000.0).astype(np.float32)  # 0 outside, 1000 inside


def to_sitk(array: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """Our (slice, row, column) array and RAS affine as a SimpleITK image (LPS)."""
    image = sitk.GetImageFromArray(array)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    image.SetSpacing(spacing.tolist())
    image.SetOrigin((RAS_TO_LPS @ affine[:3, 3]).tolist())
    image.SetDirection((RAS_TO_LPS @ (affine[:3, :3] / spacing)).flatten().tolist())
    return image


def grid_like(reference: sitk.Image, spacing: float) -> sitk.Image:
    """A RAS-aligned grid of ``spacing`` mm over ``reference``'s voxel centres, from the centre of the voxel nearest
    right-anterior-superior's opposite corner: where a model trained on RAS-oriented volumes puts its first voxel."""
    centres = (
        np.array(
            [
                reference.TransformIndexToPhysicalPoint(
                    [n - 1 if c else 0 for c, n in zip(bits, reference.GetSize(), strict=True)]
                )
                for bits in np.ndindex(2, 2, 2)
            ]
        )
        @ RAS_TO_LPS.T
    )  # RAS
    low, high = centres.min(axis=0), centres.max(axis=0)
    grid = sitk.Image([int(v) for v in np.floor((high - low) / spacing + 1e-6) + 1], sitk.sitkFloat32)
    grid.SetSpacing([spacing] * 3)
    grid.SetOrigin((RAS_TO_LPS @ low).tolist())
    grid.SetDirection(RAS_TO_LPS.flatten().tolist())
    return grid


def resample(image: sitk.Image, onto: sitk.Image, nearest: bool) -> sitk.Image:
    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    return sitk.Resample(image, onto, sitk.Transform(), interpolator, 0.0, image.GetPixelID())


def truth_on_series_grid(series: sitk.Image) -> np.ndarray:
    """Points whose cube of half-side HALF_BOX lies in the ellipsoid (its 8 corners do: it is convex), drawn at
    0.5 mm and resampled onto the series' grid by SimpleITK (nearest neighbour)."""
    fine = grid_like(series, 0.5)
    size = fine.GetSize()
    index = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in size], indexing="ij"), -1)  # x, y, z (RAS)
    points = np.asarray(fine.GetOrigin()) @ RAS_TO_LPS.T + index * 0.5
    eroded = np.ones(size, dtype=bool)
    for corner in np.ndindex(2, 2, 2):
        eroded &= inside(points + (np.array(corner) * 2 - 1) * HALF_BOX)
    truth = sitk.GetImageFromArray(eroded.transpose(2, 1, 0).astype(np.uint8))
    truth.CopyInformation(fine)
    return sitk.GetArrayFromImage(resample(truth, series, nearest=True))


def model_config(geometry: bool, roi_size: tuple[int, int, int] = (48, 48, 40)) -> SegmentationModelConfig:
    raw = tiny_config()
    raw["inference"] = {"mode": "sliding_window", "axes": "xyz", "roi_size": roi_size, "sw_batch_size": 1}
    intensity = {"name": "ScaleIntensityRange", "args": {"a_min": 0.0, "a_max": 1000.0, "b_min": 0.0, "b_max": 1.0}}
    steps = [
        {"name": "Orientation", "args": {"axcodes": "RAS"}},
        {"name": "Spacing", "args": {"pixdim": [MODEL_SPACING] * 3, "mode": "bilinear"}},
    ]
    raw["pre_transforms"] = [*steps, intensity] if geometry else [intensity]
    raw["post_transforms"] = []
    return SegmentationModelConfig(**raw)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float(np.logical_and(a, b).sum()) / float(a.sum() + b.sum())


@pytest.fixture(scope="module")
def served() -> dict[str, np.ndarray]:
    affine = series_affine()
    volume = series_volume(affine)
    series = to_sitk(volume, affine)
    network = BoxErosion().eval()
    label_map = predict(network, volume, model_config(geometry=True), affine).label_map
    # offline: SimpleITK onto 1.5 mm, the same network and intensity step there, SimpleITK back (nearest)
    model_grid = resample(series, grid_like(series, MODEL_SPACING), nearest=False)
    offline_model = predict(network, sitk.GetArrayFromImage(model_grid), model_config(geometry=False)).label_map
    offline_image = sitk.GetImageFromArray(offline_model)
    offline_image.CopyInformation(model_grid)
    offline = sitk.GetArrayFromImage(resample(offline_image, series, nearest=True))
    on_series_voxels = predict(network, volume, model_config(False, SERIES_SHAPE[::-1])).label_map  # not resampled
    return {
        "label_map": label_map,
        "truth": truth_on_series_grid(series),
        "offline": offline,
        "unresampled": on_series_voxels,
    }


def test_the_mask_of_a_model_at_1_5_mm_lands_on_the_series_grid_over_the_truth(served: dict[str, np.ndarray]) -> None:
    label_map, truth = served["label_map"], served["truth"]
    assert label_map.shape == SERIES_SHAPE and label_map.dtype == np.uint8
    assert set(np.unique(label_map)) == {0, 1}
    assert truth.sum() > 2000  # about 3,800 mm3 after the 3 mm box erosion
    assert dice(label_map == 1, truth == 1) > 0.9
    centroid = np.argwhere(label_map == 1).mean(axis=0)
    assert np.allclose(centroid, np.argwhere(truth == 1).mean(axis=0), atol=0.5)  # within half a voxel
    # the same network on the series' own voxels erodes 1.4 mm in-plane and 6 mm across slices: visibly wrong
    assert dice(served["unresampled"] == 1, truth == 1) < dice(label_map == 1, truth == 1) - 0.05


def test_the_served_mask_matches_the_model_run_offline_with_simpleitk(served: dict[str, np.ndarray]) -> None:
    label_map, offline, truth = served["label_map"] == 1, served["offline"] == 1, served["truth"] == 1
    assert dice(label_map, offline) >= 0.99
    assert abs(dice(label_map, truth) - dice(offline, truth)) <= 0.01


def test_a_resampling_model_refuses_to_run_without_the_series_affine() -> None:
    with pytest.raises(ValueError, match="needs the series' affine"):
        predict(BoxErosion(), np.zeros(SERIES_SHAPE, dtype=np.float32), model_config(geometry=True))


class Threshold(torch.nn.Module):
    """Two-class logits: class 1 where the pre-processed voxel is brighter than 0.5 (any spatial size)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(8.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        margin = (x - 0.5) * self.scale
        return torch.cat([torch.zeros_like(margin), margin], dim=1)


@pytest.mark.parametrize("axes", ["zyx", "xyz"])
def test_crop_resize_and_pad_steps_are_undone_so_the_mask_covers_the_object_on_the_series_grid(axes: str) -> None:
    affine = series_affine()
    volume = np.roll(series_volume(affine), (4, 25, -15), axis=(0, 1, 2))  # off-centre: a flipped mask misses it
    raw = model_config(geometry=True).model_dump(exclude={"source"})
    raw["inference"] = {"mode": "sliding_window", "axes": axes, "roi_size": [32, 32, 32], "sw_batch_size": 1}
    raw["pre_transforms"] = [
        *raw["pre_transforms"],
        {"name": "CropForeground", "args": {"margin": 3}},
        {"name": "Resize", "args": {"spatial_size": [30, 26, 28], "mode": "trilinear"}},
        {"name": "DivisiblePad", "args": {"k": 16}},
    ]
    label_map = predict(Threshold().eval(), volume, SegmentationModelConfig(**raw), affine).label_map
    assert label_map.shape == SERIES_SHAPE
    assert dice(label_map == 1, volume > 500) > 0.9
    assert dice(np.flip(label_map, axis=1) == 1, volume > 500) < 0.5


def test_the_uncertainty_of_a_resampling_model_is_measured_on_the_series_grid() -> None:
    """Test-time augmentation flips the content on the series' grid: a model that resamples runs on each flip."""
    from awesomme.inference.uncertainty import tta_uncertainty

    affine = series_affine()
    volume = series_volume(affine)
    score = tta_uncertainty(BoxErosion().eval(), volume, model_config(geometry=True), affine)
    assert 0.0 <= score < 0.1  # a symmetric-enough ellipsoid: its flips agree almost everywhere
