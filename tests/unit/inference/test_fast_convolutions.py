"""The fast convolutions give what torch's own give, on thin and on ordinary inputs."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from monai.networks.nets import UNet
from torch import nn

from awesomme.inference.fast_convolutions import FastConv3d, FastConvTranspose3d, use_fast_convolutions


def _same_as_torch(module: nn.Module, shape: tuple[int, ...]) -> None:
    torch.manual_seed(sum(shape))
    reference = module.eval()
    thin = use_fast_convolutions(copy.deepcopy(module))
    batch = torch.randn(*shape)
    with torch.inference_mode():
        try:
            expected = reference(batch)
        except RuntimeError:  # a kernel larger than the padded input: the thin form refuses it too
            with pytest.raises(RuntimeError):
                thin(batch)
            return
        actual = thin(batch)
    assert actual.shape == expected.shape
    assert torch.allclose(actual, expected, atol=1e-5), float((actual - expected).abs().max())


@pytest.mark.parametrize("shape", [(2, 3, 5, 6, 1), (1, 3, 1, 6, 7), (1, 3, 4, 1, 1), (1, 3, 5, 6, 7)])
@pytest.mark.parametrize(
    ("stride", "padding", "dilation"), [(1, 1, 1), (2, 1, 1), ((1, 2, 1), (1, 0, 1), 1), (1, 2, 2), (3, 1, 1)]
)
def test_a_convolution_on_a_thin_axis_matches_torch(
    shape: tuple[int, ...], stride: object, padding: object, dilation: object
) -> None:
    _same_as_torch(nn.Conv3d(3, 4, 3, stride=stride, padding=padding, dilation=dilation), shape)  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [(2, 2, 9, 10, 4), (1, 2, 3, 9, 10), (1, 2, 7, 2, 8), (1, 2, 5, 6, 17)])
@pytest.mark.parametrize(("in_channels", "out_channels"), [(2, 2), (2, 1), (1, 2)])
@pytest.mark.parametrize(("stride", "padding"), [(1, 1), (1, 0), (1, (2, 0, 1)), ((1, 2, 3), 1), (2, 1)])
def test_a_few_channel_convolution_folds_its_thinnest_axis_and_matches_torch(
    shape: tuple[int, ...], in_channels: int, out_channels: int, stride: object, padding: object
) -> None:
    layer = nn.Conv3d(in_channels, out_channels, 3, stride=stride, padding=padding)  # type: ignore[arg-type]
    batch = torch.empty(shape[0], in_channels, *shape[2:])
    folds = use_fast_convolutions(copy.deepcopy(layer))._fold_axis(batch)  # type: ignore[operator]
    thinnest = min(range(3), key=lambda axis: shape[2 + axis])
    assert folds == (thinnest if layer.stride[thinnest] == 1 else None)
    _same_as_torch(layer, tuple(batch.shape))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5, 1), (1, 3, 1, 4, 5), (1, 3, 4, 5, 6)])
@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "output_padding"),
    [(3, 2, 1, 1), (3, 2, 1, 0), (2, 2, 0, 0), (3, 1, 1, 0), (5, 3, 1, 2)],
)
@pytest.mark.parametrize("out_channels", [2, 6])  # (3, 2, 1, 1) on a thick input: sub-pixel form / torch's
def test_a_transposed_convolution_matches_torch(
    shape: tuple[int, ...], kernel: int, stride: int, padding: int, output_padding: int, out_channels: int
) -> None:
    _same_as_torch(nn.ConvTranspose3d(3, out_channels, kernel, stride, padding, output_padding), shape)


def test_the_sub_pixel_weights_follow_a_weight_update_and_training_uses_torch() -> None:
    torch.manual_seed(2)
    layer = use_fast_convolutions(nn.ConvTranspose3d(5, 2, 3, 2, 1, 1))
    assert isinstance(layer, FastConvTranspose3d) and layer._sub_pixel_applies()
    batch = torch.randn(1, 5, 4, 3, 6)
    with torch.no_grad():
        layer(batch)
        layer.weight.mul_(-2.0)  # as load_state_dict does: the cached phase weights must not be reused
        expected = F.conv_transpose3d(batch, layer.weight, layer.bias, 2, 1, 1)
        assert torch.allclose(layer(batch), expected, atol=1e-5)
    output = layer(batch)  # gradients on: torch's own kernel
    output.sum().backward()
    assert layer.weight.grad is not None


def test_a_unet_window_keeps_its_output_and_its_state_dict() -> None:
    """The Table-3 U-Net's depth on a 16-slice window: its bottom runs one voxel thick."""
    torch.manual_seed(5)
    network = UNet(3, 1, 2, channels=(4, 8, 8, 8, 16), strides=(2, 2, 2, 2), num_res_units=2).eval()
    thin = use_fast_convolutions(copy.deepcopy(network))
    assert any(isinstance(m, FastConv3d) for m in thin.modules())
    assert any(isinstance(m, FastConvTranspose3d) for m in thin.modules())
    assert thin.state_dict().keys() == network.state_dict().keys()
    window = torch.randn(1, 1, 48, 32, 16)
    with torch.inference_mode():
        expected, actual = network(window), thin(window)
    assert torch.allclose(actual, expected, atol=1e-5)
    assert torch.equal(actual.argmax(1), expected.argmax(1))
