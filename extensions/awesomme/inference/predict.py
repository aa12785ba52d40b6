"""Run a segmentation network on a volume: the same pre-processing for training and for serving."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from itertools import takewhile

import monai.transforms as transforms
import numpy as np
import torch
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.inferers import sliding_window_inference
from monai.transforms.utils import convert_applied_interp_mode
from monai.utils import convert_to_tensor

from awesomme.core.errors import InvalidInput
from awesomme.inference.config import GEOMETRY_PRE_TRANSFORMS, SegmentationModelConfig
from awesomme.inference.windows import side_by_side

__all__ = [
    "Prediction",
    "downsample",
    "forward_logits",
    "labels_and_confidence",
    "mean_confidence",
    "predict",
    "preprocess",
    "reversed_axes",
    "to_model_grid",
    "to_network_axes",
    "to_series_grid",
]

SLAB_SLICES = 2
SPREAD_SLICE_BYTES = 1 << 20  # slices this large are transposed in two steps (see reversed_axes)
SLAB_VOXELS = 1 << 20  # 4 MB of float32: a slab and its temporaries stay in cache (1, 4, 16 MB measured)
# Pre-processing steps that map each voxel on its own, with no statistics of the volume
VOXELWISE_PRE_TRANSFORMS = frozenset({"ScaleIntensityRange", "ThresholdIntensity"})


@dataclass
class Prediction:
    label_map: np.ndarray  # (slice, row, column), values = the config's label values
    confidence: float  # mean max-softmax over the voxels the model labelled (or over all, if none)
    timings_s: dict[str, float] = field(default_factory=dict)


def preprocess(array: np.ndarray, config: SegmentationModelConfig) -> torch.Tensor:
    """The volume as a channel-first float tensor (1, *array.shape) after the config's pre-processing steps.

    ``array`` may be a strided view (a transposed volume): it is read once, slab by slab, converted to float and
    put through the leading voxelwise steps while each slab is in cache; steps that need the whole volume's
    statistics follow on the whole. No whole-volume temporaries, no MONAI metadata on the result.
    """
    steps = [(step.name, getattr(transforms, step.name)(**step.args)) for step in config.pre_transforms]
    voxelwise = [transform for _, transform in takewhile(lambda named: named[0] in VOXELWISE_PRE_TRANSFORMS, steps)]
    tensor = torch.empty((1, *array.shape), dtype=torch.float32)
    source = torch.from_numpy(array)
    rows = max(1, SLAB_VOXELS // max(1, math.prod(array.shape[1:])))
    for first in range(0, array.shape[0], rows):
        slab = tensor[0, first : first + rows]
        slab.copy_(source[first : first + rows])
        for transform in voxelwise:
            slab.copy_(convert_to_tensor(transform(slab), track_meta=False))
    for _, transform in steps[len(voxelwise) :]:
        tensor = convert_to_tensor(transform(tensor), dtype=torch.float32, track_meta=False)
    return tensor


def reversed_axes(array: np.ndarray) -> np.ndarray:
    """A (slice, row, column) volume as a (column, row, slice) view, for pre-processing to read.

    In a plain transposed view consecutive slices lie a whole slice apart, and read in the new order every voxel
    is on another memory page: with large slices, one 2D transpose first (a copy) puts each pixel's slices side
    by side, then rows and columns swap as runs of slices. 26x1024x1024 int16 pre-processed in 0.10 s instead of
    0.18 s; below ``SPREAD_SLICE_BYTES`` per slice the plain view is as fast.
    """
    slices, rows, columns = array.shape
    if rows * columns * array.itemsize < SPREAD_SLICE_BYTES:
        return array.transpose(2, 1, 0)
    pixels_by_slice = torch.from_numpy(np.ascontiguousarray(array)).view(slices, rows * columns)
    slices_last = pixels_by_slice.t().contiguous().view(rows, columns, slices).numpy()
    return slices_last.transpose(1, 0, 2)


def downsample(tensor: torch.Tensor, factors: tuple[int, int, int]) -> torch.Tensor:
    if factors == (1, 1, 1):
        return tensor
    return F.avg_pool3d(tensor[None], kernel_size=factors, stride=factors, ceil_mode=True)[0]


def to_network_axes(tensor: torch.Tensor, axes: str, spatial_dims: int = 3) -> torch.Tensor:
    """A (..., [D,] H, W) tensor in the network's axis order: a view, ``xyz`` reverses the spatial axes."""
    if axes == "zyx":
        return tensor
    leading = tensor.dim() - spatial_dims
    return tensor.permute(*range(leading), *range(tensor.dim() - 1, leading - 1, -1))


def forward_logits(network: torch.nn.Module, volume: torch.Tensor, config: SegmentationModelConfig) -> torch.Tensor:
    """Logits (C, *spatial) for a pre-processed (1, *spatial) tensor, spatial axes in the network's order."""
    spec = config.inference
    predictor = side_by_side(network, spec.sw_batch_size)
    if spec.mode == "slices":
        if spec.axes == "zyx":  # each slice a 2D image: (D, 1, H, W)
            slices = volume.permute(1, 0, 2, 3)
            out = sliding_window_inference(slices, spec.roi_size, spec.sw_batch_size, predictor, overlap=spec.overlap)
            return out.permute(1, 0, 2, 3)  # type: ignore[union-attr]
        slices = volume.permute(3, 0, 1, 2)  # (W, H, D) -> (D, 1, W, H)
        out = sliding_window_inference(slices, spec.roi_size, spec.sw_batch_size, predictor, overlap=spec.overlap)
        return out.permute(1, 2, 3, 0)  # type: ignore[union-attr]
    out = sliding_window_inference(volume[None], spec.roi_size, spec.sw_batch_size, predictor, overlap=spec.overlap)
    return out[0]


def labels_and_confidence(
    logits: torch.Tensor, threshold: float | None = None, slab: int = SLAB_SLICES
) -> tuple[torch.Tensor, torch.Tensor]:
    """Argmax (uint8) and max-softmax (float32) of logits (C, D, H, W), a slab of slices at a time.

    The same as softmax then max, without a full-volume softmax: the argmax of the logits is that of the
    probabilities, and max softmax = 1 / sum(exp(logit - max logit)); with two classes, sigmoid(|l1 - l0|).
    With two classes and a ``threshold``, label 1 where its probability sigmoid(l1 - l0) exceeds it.
    Slabs keep the temporaries small (in cache).
    """
    cut = 0.0 if threshold is None else math.log(threshold / (1.0 - threshold))  # sigmoid(cut) = threshold
    labels = torch.empty(logits.shape[1:], dtype=torch.uint8, device=logits.device)
    top = torch.empty(logits.shape[1:], dtype=torch.float32, device=logits.device)
    for first in range(0, logits.shape[1], slab):
        block = logits[:, first : first + slab].float()
        if block.shape[0] == 2:
            margin = block[1] - block[0]
            labels[first : first + slab] = margin > cut  # a tie is class 0, as argmax has it
            torch.sigmoid(margin.abs_(), out=top[first : first + slab])
            continue
        peak, index = block.max(dim=0)
        labels[first : first + slab] = index
        top[first : first + slab] = torch.exp(block - peak).sum(dim=0).reciprocal_()
    return labels, top


def mean_confidence(top: torch.Tensor, labels: torch.Tensor, slab: int = 32) -> float:
    """The mean of ``top`` over the labelled voxels (over all, if none), summed by slabs that stay in cache."""
    total, count = 0.0, 0
    for first in range(0, labels.shape[0], slab):
        labelled = labels[first : first + slab] > 0
        total += float(top[first : first + slab].mul(labelled).sum(dtype=torch.float64))
        count += int(labelled.sum())
    return total / count if count else float(top.mean())


def _device_of(network: torch.nn.Module) -> torch.device:
    return next(network.parameters()).device


# Arguments a YAML cannot set: our affines map to RAS millimetres; float32 resampling grids (MONAI's default is
# float64: a 100 x 512 x 512 series took 0.8 GB more at peak, for no difference in the mask of the tests)
FIXED_ARGUMENTS: dict[str, dict[str, object]] = {
    "Orientation": {"labels": (("L", "R"), ("P", "A"), ("I", "S"))},
    "Spacing": {"dtype": torch.float32},
}


def _pre_steps(config: SegmentationModelConfig) -> list[transforms.Transform]:
    steps = []
    for step in config.pre_transforms:
        args = {**FIXED_ARGUMENTS.get(step.name, {}), **step.args}
        steps.append(getattr(transforms, step.name)(**args))
    return steps


def to_model_grid(
    array: np.ndarray, affine: np.ndarray, config: SegmentationModelConfig
) -> tuple[MetaTensor, list[transforms.Transform]]:
    """The volume after all the config's pre-processing steps, on the model's grid: a channel-first MetaTensor in
    MONAI's (column, row, slice) order whose ``applied_operations`` let ``to_series_grid`` undo the geometry, and
    the steps that ran (MONAI inverts a step with the instance that applied it)."""
    image = MetaTensor(
        torch.from_numpy(np.ascontiguousarray(array.transpose(2, 1, 0), dtype=np.float32))[None],
        affine=torch.as_tensor(affine, dtype=torch.float64),
    )
    steps = _pre_steps(config)
    for transform in steps:
        image = transform(image)
    return image, steps


def to_series_grid(
    label_map: torch.Tensor, model_grid: MetaTensor, steps: list[transforms.Transform], config: SegmentationModelConfig
) -> np.ndarray:
    """A (column, row, slice) label map on the model's grid back on the series' grid, (slice, row, column):
    the geometry steps' inverses in reverse order, with nearest-neighbour interpolation. Only ``model_grid``'s
    metadata is read (its voxels may be gone)."""
    operations = convert_applied_interp_mode(model_grid.applied_operations, mode="nearest", align_corners=None)
    labels = MetaTensor(label_map[None].float(), meta=model_grid.meta, applied_operations=operations)
    for step, transform in reversed(list(zip(config.pre_transforms, steps, strict=True))):
        if step.name in GEOMETRY_PRE_TRANSFORMS:
            labels = transform.inverse(labels)  # type: ignore[attr-defined]
    return labels.as_tensor()[0].round().to(torch.uint8).numpy().transpose(2, 1, 0)


def predict(
    network: torch.nn.Module, array: np.ndarray, config: SegmentationModelConfig, affine: np.ndarray | None = None
) -> Prediction:
    """The label map of ``array`` (slice, row, column) on its own grid.

    A model whose pre-processing moves voxels (``config.resamples``: spacing, orientation, crop, resize, pad) needs
    ``affine`` (the series' (column, row, slice) -> RAS mm): the volume goes onto the model's grid, the network
    runs there, and the label map comes back onto the series' grid by the inverse steps (nearest neighbour).
    """
    if config.resamples and affine is None:
        raise ValueError(f"model {config.name} resamples the series: predict needs the series' affine")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    axes = config.inference.axes
    factors = config.inference.downsample
    model_grid: MetaTensor | None = None
    steps: list[transforms.Transform] = []
    if config.resamples:
        model_grid, steps = to_model_grid(array, affine, config)  # type: ignore[arg-type]
        # (column, row, slice) on the model's grid, a plain tensor in the network's axis order; the MetaTensor
        # keeps its metadata (for the way back) on an empty tensor, so the voxels go once the network has run
        preprocessed = model_grid.as_tensor()
        model_grid = MetaTensor(torch.empty(0), meta=model_grid.meta, applied_operations=model_grid.applied_operations)
        if axes == "zyx":
            preprocessed = to_network_axes(preprocessed, "xyz")  # reversed axes: a view
        view_shape = tuple(preprocessed.shape[1:])
        slices = view_shape[0] if axes == "zyx" else view_shape[2]
    else:
        # in the network's axis order from the start: one float copy of the volume, not two
        view = array if axes == "zyx" else reversed_axes(array)
        view_shape, slices = view.shape, array.shape[0]
    needed = config.inference.slices_needed
    if slices < needed:  # a 3D window padded mostly with nothing would answer a mask of nothing
        raise InvalidInput(f"model {config.name} reads windows of {needed} slices; the series has {slices}")
    if model_grid is None:
        preprocessed = preprocess(view, config)
    tensor = downsample(preprocessed, factors if axes == "zyx" else factors[::-1])
    del preprocessed  # ``tensor`` is the one reference left (see ``del tensor``)
    tensor = tensor.to(_device_of(network))  # pre-processing on the CPU, the network where it was loaded
    timings["pre"] = time.perf_counter() - start

    start = time.perf_counter()
    with torch.inference_mode():
        logits = forward_logits(network, tensor, config)
        shape = view_shape
        if tuple(logits.shape[1:]) != shape:
            logits = F.interpolate(logits[None], size=shape, mode="trilinear", align_corners=False)[0]
    timings["forward"] = time.perf_counter() - start
    del tensor  # the peak memory of a request is here: let go of the input before the post-processing

    start = time.perf_counter()
    labels, top = labels_and_confidence(logits, config.inference.threshold)
    del logits  # normal tensors: post-processing steps update them in place
    labels, top = labels.cpu(), top.cpu()  # post-processing on the CPU (a no-op there)
    label_map = labels[None]
    for step in config.post_transforms:
        label_map = torch.as_tensor(getattr(transforms, step.name)(**step.args)(label_map))
    confidence = mean_confidence(top, torch.as_tensor(label_map[0]))
    network_order = torch.as_tensor(label_map[0]).to(torch.uint8)
    if model_grid is not None:  # post-processing ran on the model's grid, as in training
        result = to_series_grid(
            network_order if axes == "xyz" else to_network_axes(network_order, "xyz"), model_grid, steps, config
        )
    else:  # back in (slice, row, column) order; post-processing and confidence do not depend on the order
        result = to_network_axes(network_order, axes).contiguous().numpy()
    timings["post"] = time.perf_counter() - start
    return Prediction(label_map=result, confidence=confidence, timings_s=timings)
