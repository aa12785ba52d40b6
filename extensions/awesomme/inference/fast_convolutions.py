"""Exact rewrites of the 3D convolutions oneDNN runs slowly on a CPU, for inference.

Each rewrite computes the same sums as torch's own convolution minus products with padding zeros, so results
match up to float rounding; any other input goes torch's usual way. No library does these (oneDNN and
torch.compile keep both patterns as they are), hence this module. Measured on the Table-3 U-Net (256x256x16
windows, 2 CPU threads, ``benchmarks/table3.py`` reports the whole pass):

* **Thin axis.** A 16-slice window reaches the bottom of a four-level U-Net one voxel thick: a 3x3x3 convolution
  padded by one there multiplies two of its three planes of taps by zeros, and oneDNN runs such a thin 3D
  convolution 3-6x slower than the same work as a 3x3x1 one (8.0 -> 1.8 ms and 15.6 -> 2.4 ms for the two bottom
  convolutions, 128 -> 256 and 256 -> 256 channels on 16x16x1). Transposed convolutions on a thin input get one
  plane per output position the same way.
* **Sub-pixel up-convolution.** A stride-2 transposed convolution (kernel 3, padding 1, output padding 1) to a few
  channels, such as a U-Net's last up-convolution (32 -> 2 channels), is slow in oneDNN's transposed kernel
  (61 ms per window). Its eight output phases are one stride-1 convolution with 2x2x2 taps to 8x the channels,
  then interleaved: 41 ms. With more output channels the transposed kernel is faster (64 -> 16: 19 against 34 ms),
  hence the limit ``SUB_PIXEL_MAX_CHANNELS``.
"""

from __future__ import annotations

from itertools import product

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SUB_PIXEL_MAX_CHANNELS", "FastConv3d", "FastConvTranspose3d", "use_fast_convolutions"]

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


class FastConv3d(nn.Conv3d):
    """A ``Conv3d`` that, on an input axis of size 1 with one output position, uses only the one tap there."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros" or isinstance(self.padding, str):
            return super().forward(input)
        weight, padding = self.weight, tuple(self.padding)
        for axis in range(3):
            if input.shape[2 + axis] != 1 or self.kernel_size[axis] == 1:
                continue
            if not 0 <= 2 * padding[axis] - self.dilation[axis] * (self.kernel_size[axis] - 1) < self.stride[axis]:
                continue  # not exactly one output position along the axis
            tap = _tap(0, padding[axis], self.dilation[axis], self.kernel_size[axis])
            if tap is None:
                continue
            weight = weight.narrow(2 + axis, tap, 1)
            padding = _set(padding, axis, 0)
        if weight is self.weight:
            return super().forward(input)
        return F.conv3d(input, weight, self.bias, self.stride, padding, self.dilation, self.groups)


class FastConvTranspose3d(nn.ConvTranspose3d):
    """A ``ConvTranspose3d`` that runs a thin input plane by plane and a few-channel up-convolution sub-pixel."""

    _sub_pixel: tuple[int, torch.Tensor] | None = None  # (weight version, phase weights), built on first use

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
        taps = [_tap(index, padding, dilation, kernel) for index in range(length)]
        if None in taps:  # a plane only the output padding reaches: rare enough to leave to torch
            return super().forward(input)
        stride, dil = _set(self.stride, axis, 1), _set(self.dilation, axis, 1)
        pad, out_pad = _set(self.padding, axis, 0), _set(self.output_padding, axis, 0)
        planes = [
            F.conv_transpose3d(
                input, self.weight.narrow(2 + axis, tap, 1), self.bias, stride, pad, out_pad, self.groups, dil
            )
            for tap in taps
            if tap is not None
        ]
        return torch.cat(planes, dim=2 + axis)

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
        version = self.weight._version
        if self._sub_pixel is None or self._sub_pixel[0] != version:
            weight = self.weight.detach()
            phases = weight.new_zeros(2, 2, 2, self.out_channels, self.in_channels, 2, 2, 2)
            for (a, taps_a), (b, taps_b), (c, taps_c) in product(enumerate(_PHASE_TAPS), repeat=3):
                for (da, ka), (db, kb), (dc, kc) in product(taps_a.items(), taps_b.items(), taps_c.items()):
                    phases[a, b, c, :, :, da, db, dc] = weight[:, :, ka, kb, kc].T
            self._sub_pixel = (version, phases.reshape(8 * self.out_channels, self.in_channels, 2, 2, 2))
        return self._sub_pixel[1]

    def _sub_pixel_forward(self, input: torch.Tensor) -> torch.Tensor:
        n, _, x, y, z = input.shape
        phases = F.conv3d(F.pad(input, (0, 1, 0, 1, 0, 1)), self._phase_weights())
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
