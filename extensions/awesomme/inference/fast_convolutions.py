"""Exact rewrites of the 3D convolutions oneDNN runs slowly on a CPU, for inference.

Each rewrite computes the same sums as torch's own convolution minus products with padding zeros, so results
match up to float rounding; any other input goes torch's usual way. No library does these (oneDNN and
torch.compile keep both patterns as they are), hence this module. Measured on the Table-3 U-Net (256x256x16
windows, 2 CPU threads, ``benchmarks/table3.py`` reports the whole pass):

* **Thin axis.** A 16-slice window reaches the bottom of a four-level U-Net one voxel thick: a 3x3x3 convolution
  padded by one there multiplies two of its three planes of taps by zeros, and oneDNN runs such a thin 3D
  convolution 3-6x slower than the same work as a 3x3x1 one (8.0 -> 1.8 ms and 15.6 -> 2.4 ms for the two bottom
  convolutions, 128 -> 256 and 256 -> 256 channels on 16x16x1). With one thin axis the rest is a 2D convolution,
  which oneDNN runs 3x faster again than the 3x3x1 3D one (256 -> 256: 8.2 -> 2.7 ms, torch's 3x3x3: 16.1 ms).
  A transposed convolution on a thin input is a 2D one too, its output planes stacked as the channels of one call
  (384 -> 64 channels, 2 planes: 4.9 ms plane by plane in 3D, 2.5 ms; torch's: 12.8 ms).
* **Sub-pixel up-convolution.** A stride-2 transposed convolution (kernel 3, padding 1, output padding 1) to a few
  channels, such as a U-Net's last up-convolution (32 -> 2 channels), is slow in oneDNN's transposed kernel
  (61 ms per window). Its eight output phases are one stride-1 convolution with 2x2x2 taps to 8x the channels,
  then interleaved: 41 ms. With more output channels the transposed kernel is faster (64 -> 16: 19 against 34 ms),
  hence the limit ``SUB_PIXEL_MAX_CHANNELS``.
* **Few channels, thin axis folded.** oneDNN runs a 3D convolution with a couple of channels at a fraction of its
  speed (the U-Net's last one, 2 -> 2 channels on a 256x256x16 window: 15-18 ms, its output padded to 8 channels).
  With the window's 16 slices as channels it is one 2D convolution, 32 -> 32 channels, whose banded weight is zero
  where a slice does not reach another: 16 / 3 times the multiplications, yet 9 ms, and 11-13 ms with the moves of
  the axis (``FOLD_MAX_CHANNELS``, ``FOLD_MAX_THICKNESS``). The result stays a view in the input's axis order.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import product

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "FOLD_MAX_CHANNELS",
    "FOLD_MAX_THICKNESS",
    "SUB_PIXEL_MAX_CHANNELS",
    "FastConv3d",
    "FastConvTranspose3d",
    "use_fast_convolutions",
]

FOLD_MAX_CHANNELS = 2  # a few-channel convolution folds its thinnest axis into channels ...
FOLD_MAX_THICKNESS = 16  # ... if that axis is this thin: the banded 2D weight does thickness / 3 times the work
SUB_PIXEL_MAX_CHANNELS = 4  # output channels up to which the sub-pixel form was measured faster
# per axis, for stride 2, kernel 3, padding 1, output padding 1: output phase -> {input offset: kernel tap}
_PHASE_TAPS = ({0: 1}, {0: 2, 1: 0})


def _tap(output_index: int, padding: int, dilation: int, kernel: int) -> int | None:
    """The kernel tap that puts input voxel 0 at ``output_index`` (None if none does)."""
    offset = output_index + padding
    if offset % dilation or not 0 <= offset // dilation < kernel:
        return None
    return offset // dilation


def _set(values: tuple[int, ...], axis: int, value: int) -> tuple[int, ...]:
    return tuple(value if index == axis else item for index, item in enumerate(values))


def _other(values: tuple[int, ...], axis: int) -> list[int]:
    return [item for index, item in enumerate(values) if index != axis]


def _derived_weight(layer: nn.Module, key: tuple[object, ...], build: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``build()`` from ``layer.weight``, kept until the weight changes (``load_state_dict`` bumps its version).

    Inference only: with gradients on, the weight is derived afresh so that they flow to the parameter.
    """
    if torch.is_grad_enabled():
        return build()
    version = layer.weight._version
    cache: dict[tuple[object, ...], tuple[int, torch.Tensor]] = layer.__dict__.setdefault("_derived_weights", {})
    if key not in cache or cache[key][0] != version:
        with torch.no_grad():
            cache[key] = (version, build().contiguous())
    return cache[key][1]


class FastConv3d(nn.Conv3d):
    """A ``Conv3d`` that, on an input axis of size 1 with one output position, uses only the one tap there."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super().forward(input)
        taps = {axis: only for axis in range(3) if (only := self._only_tap(input, axis)) is not None}
        if not taps:
            fold = self._fold_axis(input)
            return super().forward(input) if fold is None else self._folded(input, fold)
        if len(taps) == 1:  # a 2D convolution over the other two axes
            ((axis, tap),) = taps.items()
            weight = _derived_weight(self, ("plane", axis, tap), lambda: self.weight.select(2 + axis, tap))
            stride2d, padding2d, dilation2d = (_other(v, axis) for v in (self.stride, self.padding, self.dilation))
            out = F.conv2d(input.squeeze(2 + axis), weight, self.bias, stride2d, padding2d, dilation2d, self.groups)
            return out.unsqueeze(2 + axis)
        weight, padding = self.weight, tuple(self.padding)  # two or three thin axes: one tap along each
        for axis, tap in taps.items():
            weight = weight.narrow(2 + axis, tap, 1)
            padding = _set(padding, axis, 0)
        return F.conv3d(input, weight, self.bias, self.stride, padding, self.dilation, self.groups)

    def _only_tap(self, input: torch.Tensor, axis: int) -> int | None:
        """The one tap that meets the input along ``axis``, if it is one voxel thick with one output position."""
        assert not isinstance(self.padding, str)
        kernel, padding, dilation = self.kernel_size[axis], self.padding[axis], self.dilation[axis]
        if input.shape[2 + axis] != 1 or kernel == 1:
            return None
        if not 0 <= 2 * padding - dilation * (kernel - 1) < self.stride[axis]:
            return None  # not exactly one output position along the axis
        return _tap(0, padding, dilation, kernel)

    def _fold_axis(self, input: torch.Tensor) -> int | None:
        """The thinnest spatial axis, if this few-channel convolution runs faster with that axis as channels."""
        if max(self.in_channels, self.out_channels) > FOLD_MAX_CHANNELS or self.groups != 1:
            return None
        axis = min(range(3), key=lambda a: input.shape[2 + a])
        if input.shape[2 + axis] > FOLD_MAX_THICKNESS or self.stride[axis] != 1 or self.dilation[axis] != 1:
            return None
        return axis

    def _folded(self, input: torch.Tensor, axis: int) -> torch.Tensor:
        """A 2D convolution over the other two axes with channels (channel, position along ``axis``)."""
        assert not isinstance(self.padding, str)
        thickness, kernel, padding = input.shape[2 + axis], self.kernel_size[axis], self.padding[axis]
        out_thickness = thickness + 2 * padding - kernel + 1
        if out_thickness < 1:
            return super().forward(input)

        def banded() -> torch.Tensor:  # (out * out_thickness, in * thickness, ...): zero where no tap connects
            weight = self.weight.new_zeros(
                self.out_channels, out_thickness, self.in_channels, thickness, *_other(self.kernel_size, axis)
            )
            for position, tap in product(range(out_thickness), range(kernel)):
                source = position + tap - padding
                if 0 <= source < thickness:
                    weight[:, position, :, source] = self.weight.select(2 + axis, tap)
            return weight.flatten(2, 3).flatten(0, 1)

        weight = _derived_weight(self, ("fold", axis, thickness), banded)
        bias = None if self.bias is None else self.bias.repeat_interleave(out_thickness)
        stride2d, padding2d, dilation2d = (_other(v, axis) for v in (self.stride, self.padding, self.dilation))
        planes = input.movedim(2 + axis, 2).flatten(1, 2)
        out = F.conv2d(planes, weight, bias, stride2d, padding2d, dilation2d)
        return out.view(out.shape[0], self.out_channels, out_thickness, *out.shape[2:]).movedim(2, 2 + axis)


class FastConvTranspose3d(nn.ConvTranspose3d):
    """A ``ConvTranspose3d`` that runs a thin input plane by plane and a few-channel up-convolution sub-pixel."""

    def forward(self, input: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super().forward(input, output_size)
        axis = next((a for a in range(3) if input.shape[2 + a] == 1 and self.kernel_size[a] > 1), None)
        if axis is not None:
            return self._thin(input, axis)
        if self._sub_pixel_applies() and not torch.is_grad_enabled():
            return self._sub_pixel_forward(input)
        return super().forward(input)

    def _thin(self, input: torch.Tensor, axis: int) -> torch.Tensor:
        assert not isinstance(self.padding, str)
        kernel, padding, dilation = self.kernel_size[axis], self.padding[axis], self.dilation[axis]
        length = dilation * (kernel - 1) - 2 * padding + self.output_padding[axis] + 1
        taps = [tap for index in range(length) if (tap := _tap(index, padding, dilation, kernel)) is not None]
        if len(taps) < length or self.groups != 1:  # a plane only the output padding reaches; groups: torch's way
            return super().forward(input)
        # one 2D transposed convolution whose output channels are (plane, channel): weight (in, planes * out, ...)
        weight = _derived_weight(
            self, ("planes", axis, *taps), lambda: torch.cat([self.weight.select(2 + axis, t) for t in taps], dim=1)
        )
        bias = None if self.bias is None else self.bias.repeat(length)
        plane_args = (_other(v, axis) for v in (self.stride, self.padding, self.output_padding, self.dilation))
        stride2d, padding2d, output_padding2d, dilation2d = plane_args
        out = F.conv_transpose2d(
            input.squeeze(2 + axis), weight, bias, stride2d, padding2d, output_padding2d, 1, dilation2d
        )
        planes = out.view(out.shape[0], length, self.out_channels, *out.shape[2:])
        return planes.movedim(1, 2 + axis).contiguous()

    def _sub_pixel_applies(self) -> bool:
        return (
            self.out_channels <= SUB_PIXEL_MAX_CHANNELS
            and self.groups == 1
            and self.kernel_size == (3, 3, 3)
            and self.stride == (2, 2, 2)
            and self.padding == (1, 1, 1)
            and self.output_padding == (1, 1, 1)
            and self.dilation == (1, 1, 1)
        )

    def _phase_weights(self) -> torch.Tensor:
        """(8 * out, in, 2, 2, 2): output phase (a, b, c) of channel o is the stride-1 convolution at row
        ((a * 2 + b) * 2 + c) * out + o, over input offsets 0 and 1 along each axis."""
        weight = self.weight.detach()
        phases = weight.new_zeros(2, 2, 2, self.out_channels, self.in_channels, 2, 2, 2)
        for (a, taps_a), (b, taps_b), (c, taps_c) in product(enumerate(_PHASE_TAPS), repeat=3):
            for (da, ka), (db, kb), (dc, kc) in product(taps_a.items(), taps_b.items(), taps_c.items()):
                phases[a, b, c, :, :, da, db, dc] = weight[:, :, ka, kb, kc].T
        return phases.reshape(8 * self.out_channels, self.in_channels, 2, 2, 2)

    def _sub_pixel_forward(self, input: torch.Tensor) -> torch.Tensor:
        n, _, x, y, z = input.shape
        phases = F.conv3d(F.pad(input, (0, 1, 0, 1, 0, 1)), _derived_weight(self, ("phases",), self._phase_weights))
        out = phases.view(n, 2, 2, 2, self.out_channels, x, y, z).permute(0, 4, 5, 1, 6, 2, 7, 3)
        out = out.reshape(n, self.out_channels, 2 * x, 2 * y, 2 * z)
        return out if self.bias is None else out.add_(self.bias.view(1, -1, 1, 1, 1))


def use_fast_convolutions(network: nn.Module) -> nn.Module:
    """Switch every plain ``Conv3d`` / ``ConvTranspose3d`` of ``network`` to its fast form, in place.

    Only the forward pass changes: same parameters, same state-dict keys, same results up to float rounding.
    """
    for module in network.modules():
        if type(module) is nn.Conv3d:
            module.__class__ = FastConv3d
        elif type(module) is nn.ConvTranspose3d:
            module.__class__ = FastConvTranspose3d
    return network
