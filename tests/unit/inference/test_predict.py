"""Post-processing of logits: the labels and confidence of a softmax, without a full-volume softmax."""

from __future__ import annotations

import threading

import monai.transforms as monai_transforms
import numpy as np
import pytest
import torch

from awesomme.inference import predict as predict_module
from awesomme.inference.config import SegmentationModelConfig
from awesomme.inference.network import build_network
from awesomme.inference.predict import labels_and_confidence, mean_confidence, predict, preprocess
from awesomme.inference.windows import side_by_side
from tests.unit.inference.conftest import tiny_config


@pytest.mark.parametrize("classes", [2, 3, 5])
@pytest.mark.parametrize("slab", [1, 2, 7])
def test_labels_and_confidence_are_softmax_argmax_and_max(classes: int, slab: int) -> None:
    generator = torch.Generator().manual_seed(classes * 10 + slab)
    logits = torch.randn(classes, 9, 17, 13, generator=generator) * 4
    logits[:, 0, 0, 0] = 1.5  # a tie goes to the first class, as argmax has it
    labels, top = labels_and_confidence(logits, slab=slab)
    probabilities = torch.softmax(logits, dim=0)
    expected_top, expected_labels = probabilities.max(dim=0)
    assert labels.dtype == torch.uint8 and labels.shape == logits.shape[1:]
    assert torch.equal(labels, expected_labels.to(torch.uint8))
    assert torch.allclose(top, expected_top, atol=1e-6)
    assert int(labels[0, 0, 0]) == 0


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8])
def test_a_threshold_labels_the_voxels_whose_probability_exceeds_it(threshold: float) -> None:
    generator = torch.Generator().manual_seed(11)
    logits = torch.randn(2, 12, 9, 7, generator=generator) * 3
    labels, top = labels_and_confidence(logits, threshold, slab=5)
    probability = torch.softmax(logits, dim=0)[1]
    assert torch.equal(labels, (probability > threshold).to(torch.uint8))
    assert torch.allclose(top, torch.softmax(logits, dim=0).max(dim=0).values, atol=1e-6)
    if threshold < 0.5:  # more voxels than argmax, never fewer
        assert int(labels.sum()) > int(labels_and_confidence(logits)[0].sum())


def test_a_threshold_is_refused_for_a_model_with_several_labels() -> None:
    raw = tiny_config()
    raw["labels"] = {"lung": 1, "nodule": 2}
    raw["network"]["args"]["out_channels"] = 3
    raw["inference"] = {**raw["inference"], "threshold": 0.3}
    with pytest.raises(ValueError, match="threshold applies to models with one label"):
        SegmentationModelConfig(**raw)


def test_mean_confidence_is_the_mean_over_labelled_voxels() -> None:
    generator = torch.Generator().manual_seed(7)
    top = torch.rand(70, 9, 5, generator=generator)
    labels = (torch.rand(70, 9, 5, generator=generator) * 3).to(torch.uint8)  # 0, 1 and 2
    assert mean_confidence(top, labels, slab=8) == pytest.approx(float(top[labels > 0].mean()), rel=1e-6)
    assert mean_confidence(top, torch.zeros_like(labels)) == pytest.approx(float(top.mean()), rel=1e-6)


def _config(mode: str, axes: str, roi: list[int], sw_batch_size: int = 2) -> SegmentationModelConfig:
    spatial_dims = 2 if mode == "slices" else 3
    raw = tiny_config()
    raw["network"]["args"]["spatial_dims"] = spatial_dims
    raw["inference"] = {"mode": mode, "axes": axes, "roi_size": roi, "sw_batch_size": sw_batch_size, "overlap": 0.25}
    raw["post_transforms"] = []
    return SegmentationModelConfig(**raw)


@pytest.mark.parametrize("steps", [["ScaleIntensityRange", "NormalizeIntensity"], ["NormalizeIntensity"], []])
def test_preprocessing_by_slabs_of_a_transposed_view_is_monais_on_the_whole(
    steps: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Voxelwise steps run slab by slab (several slabs here), the rest on the whole: the same floats as MONAI's
    transforms on the converted volume, and a plain tensor (no metadata to carry through the network)."""
    monkeypatch.setattr(predict_module, "SLAB_VOXELS", 7 * 9)  # 1 row of (7, 9) per slab
    arguments = {"ScaleIntensityRange": {"a_min": -1000.0, "a_max": 400.0, "b_min": 0.0, "b_max": 1.0, "clip": True}}
    raw = tiny_config()
    raw["pre_transforms"] = [{"name": name, "args": arguments.get(name, {})} for name in steps]
    config = SegmentationModelConfig(**raw)
    volume = np.random.default_rng(4).integers(-2000, 2000, size=(9, 7, 5), dtype=np.int16)
    view = volume.transpose(2, 1, 0)  # (5, 7, 9), as an xyz model reads it

    tensor = preprocess(view, config)

    expected = torch.from_numpy(np.ascontiguousarray(view, dtype=np.float32))[None]
    for name in steps:
        expected = getattr(monai_transforms, name)(**arguments.get(name, {}))(expected)
    assert type(tensor) is torch.Tensor and tensor.dtype == torch.float32 and tensor.shape == (1, 5, 7, 9)
    torch.testing.assert_close(tensor, torch.as_tensor(expected).as_subclass(torch.Tensor), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("mode", "roi"), [("sliding_window", [28, 20, 6]), ("slices", [28, 20])], ids=["sliding_window", "slices"]
)
def test_an_xyz_network_sees_the_volume_as_column_row_slice(mode: str, roi: list[int]) -> None:
    """What an ``xyz`` model predicts is what its network gives on the transposed volume, back in our order.

    One window covers the whole volume (column, row, slice = 28, 20, 6), so the windowed pass is the plain one.
    """
    config = _config(mode, "xyz", roi)
    torch.manual_seed(3)
    network = build_network(config).eval()
    volume = np.random.default_rng(3).normal(size=(6, 20, 28)).astype(np.float32)
    prediction = predict(network, volume, config)

    tensor = preprocess(volume, config)  # (1, D, H, W)
    with torch.no_grad():
        if mode == "slices":  # every slice as (column, row)
            logits = network(tensor.permute(1, 0, 3, 2)).permute(1, 0, 3, 2)
        else:
            logits = network(tensor.permute(0, 3, 2, 1)[None])[0].permute(0, 3, 2, 1)
    expected = (logits[1] > logits[0]).to(torch.uint8).numpy()
    assert prediction.label_map.shape == volume.shape and prediction.label_map.flags.c_contiguous
    np.testing.assert_array_equal(prediction.label_map, expected)
    # against the zyx reading of the same network, the answers differ: the axis order matters
    zyx = predict(network, volume, _config(mode, "zyx", roi[::-1]))
    assert not np.array_equal(zyx.label_map, prediction.label_map)


def test_windows_side_by_side_give_the_batch_result_and_leave_the_callers_threads() -> None:
    config = _config("sliding_window", "zyx", [8, 16, 16], sw_batch_size=3)
    torch.manual_seed(5)
    network = build_network(config).eval()
    batch = torch.randn(5, 1, 8, 16, 16)
    threads = torch.get_num_threads()
    wrapped = side_by_side(network, 3)
    with torch.inference_mode():
        together = network(batch)
        apart = wrapped(batch)
        lone = wrapped(batch[:1])
    assert torch.allclose(apart, together, atol=1e-5)
    assert torch.allclose(lone, together[:1], atol=1e-5)
    assert torch.get_num_threads() == threads
    # a thread started afterwards (a server's next request thread) gets the process's count, not a worker's
    seen: list[int] = []
    later = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    later.start()
    later.join()
    assert seen == [threads]
    if threads >= 2:  # each worker runs on its share of the threads
        assert wrapped.pool.submit(torch.get_num_threads).result() == threads // min(3, threads)
    assert side_by_side(network, 1) is network  # one window at a time: nothing to share


@pytest.mark.parametrize("spread_bytes", [1, 1 << 40])  # the two-step transpose, and the plain view
@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.uint8])
def test_reversed_axes_is_the_transposed_volume(
    monkeypatch: pytest.MonkeyPatch, spread_bytes: int, dtype: type
) -> None:
    monkeypatch.setattr(predict_module, "SPREAD_SLICE_BYTES", spread_bytes)
    volume = np.random.default_rng(3).integers(-1000, 1000, size=(5, 7, 9)).astype(dtype)
    reversed_view = predict_module.reversed_axes(volume)
    assert reversed_view.shape == (9, 7, 5)
    assert np.array_equal(reversed_view, volume.transpose(2, 1, 0))


def test_windows_built_on_a_one_thread_loader_still_run_side_by_side(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server builds its networks on the event loop's thread, which keeps one intra-op thread; predictions run
    on the model thread with all of them. The windows must be split by the model thread's count: split by the
    loader's one, a batch ran one window at a time on the model thread, twice as slow on two cores."""
    from awesomme.inference import threads as threads_module

    config = _config("sliding_window", "zyx", [8, 16, 16], sw_batch_size=2)
    network = build_network(config).eval()
    monkeypatch.setattr(threads_module, "_model_threads", 2)
    loader_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # this thread, as the event loop's after the model thread started
    try:
        wrapped = side_by_side(network, 2)
    finally:
        torch.set_num_threads(loader_threads)
    assert wrapped is not network
    assert wrapped.pool.submit(torch.get_num_threads).result() == 1  # each of the two windows on one core
