"""Shared shape and texture helpers for the phantoms, all in millimetres.

Everything here works on *broadcastable* coordinate arrays: a grid is passed as
``x[None, None, :]``, ``y[None, :, None]``, ``z[:, None, None]`` (or any sub-box of
it) and scattered points as three 1-D arrays.  That lets the same implicit function
rasterise a volume and answer "is this point inside?" for placement logic, so the
two can never disagree.

Random fields are drawn once from a seed in *physical* space: sampling the same
field on a different grid gives the same anatomy, only sampled differently.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.floating]
BoolArray = NDArray[np.bool_]


def random_unit_vectors(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    """``n`` directions uniform on the sphere, shape (n, 3) as (x, y, z)."""
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fibonacci_sphere(n: int) -> NDArray[np.float64]:
    """``n`` nearly evenly spread unit vectors (deterministic), shape (n, 3)."""
    i = np.arange(n) + 0.5
    polar = np.arccos(1.0 - 2.0 * i / n)
    azimuth = np.pi * (1.0 + 5.0**0.5) * i
    return np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], axis=1)


class FourierField:
    """Smooth zero-mean, unit-variance random field: a sum of random plane waves.

    Cheap at scattered points and on small boxes; used for blob lobulation, irregular
    margins and tumour texture.  ``wavelength_mm`` sets the feature size.
    """

    def __init__(self, rng: np.random.Generator, wavelength_mm: float, n_waves: int = 16) -> None:
        directions = random_unit_vectors(rng, n_waves)
        wavelengths = wavelength_mm * rng.uniform(0.7, 1.4, n_waves)
        self.k = directions * (2.0 * np.pi / wavelengths)[:, None]
        self.phase = rng.uniform(0.0, 2.0 * np.pi, n_waves)
        self.amplitude = float(np.sqrt(2.0 / n_waves))

    def __call__(self, x: FloatArray, y: FloatArray, z: FloatArray) -> NDArray[np.float32]:
        x, y, z = (np.asarray(a, dtype=np.float32) for a in (x, y, z))
        out: NDArray[np.float32] | None = None
        for (kx, ky, kz), ph in zip(self.k.astype(np.float32), self.phase.astype(np.float32), strict=True):
            wave = np.cos(kx * x + ky * y + (kz * z + ph))
            out = wave if out is None else np.add(out, wave, out=out)
        assert out is not None
        return out * np.float32(self.amplitude)


class LatticeNoise:
    """Smooth Gaussian noise on a coarse node lattice in physical space (unit variance).

    Sampling on a grid is a separable contraction (three small matrix products), so a
    full 1024x1024 slice costs a few milliseconds.  Every axis's weights are
    normalised by their root sum of squares, which makes the variance exactly 1
    everywhere.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        lower_mm: tuple[float, float, float],
        upper_mm: tuple[float, float, float],
        scale_mm: float,
    ) -> None:
        self.scale = float(scale_mm)
        self.nodes: list[NDArray[np.float64]] = []
        for lo, hi in zip(lower_mm, upper_mm, strict=True):
            count = int(np.ceil((hi - lo) / self.scale)) + 5
            self.nodes.append(lo - 2.0 * self.scale + self.scale * np.arange(count))
        # values indexed (z, y, x) like the volumes
        self.values = rng.standard_normal((len(self.nodes[2]), len(self.nodes[1]), len(self.nodes[0]))).astype(
            np.float32
        )

    def _weights(self, coords: FloatArray, axis: int) -> NDArray[np.float32]:
        nodes = self.nodes[axis]
        c = np.clip(np.asarray(coords, dtype=np.float64).ravel(), nodes[2], nodes[-3])
        w = np.exp(-0.5 * ((c[:, None] - nodes[None, :]) / (0.7 * self.scale)) ** 2)
        w /= np.sqrt((w**2).sum(axis=1, keepdims=True))
        return w.astype(np.float32)

    def on_grid(self, x: FloatArray, y: FloatArray, z: FloatArray) -> NDArray[np.float32]:
        """Sample on the tensor grid of 1-D axes; returns (len(z), len(y), len(x))."""
        wx, wy, wz = self._weights(x, 0), self._weights(y, 1), self._weights(z, 2)
        # Contract the small axes first; the largest product (rows) comes last as one GEMM per slice.
        t = np.tensordot(wz, self.values, axes=(1, 0))  # (nz, Ny, Nx)
        t = t @ wx.T  # (nz, Ny, nx)
        return np.matmul(wy[None, :, :], t)  # (nz, ny, nx)


def index_range(axis_mm: NDArray[np.float64], lo: float, hi: float) -> tuple[int, int]:
    """Half-open index range of the (ascending) axis samples lying in ``[lo, hi]``."""
    return int(np.searchsorted(axis_mm, lo, "left")), int(np.searchsorted(axis_mm, hi, "right"))


def segment_distance(
    x: FloatArray, y: FloatArray, z: FloatArray, a: NDArray[np.float64], b: NDArray[np.float64]
) -> NDArray[np.float32]:
    """Euclidean distance (mm) from each point to the segment ``a``-``b`` (pass float32 coordinates)."""
    d = (b - a).astype(np.float32)
    length2 = np.float32(float(d @ d) or 1e-12)
    a32 = a.astype(np.float32)
    px, py, pz = x - a32[0], y - a32[1], z - a32[2]
    t = np.clip((px * d[0] + py * d[1] + pz * d[2]) / length2, np.float32(0), np.float32(1))
    return np.sqrt((px - t * d[0]) ** 2 + (py - t * d[1]) ** 2 + (pz - t * d[2]) ** 2)


def smoothstep(edge0: float, edge1: float, v: FloatArray | float) -> FloatArray:
    """Hermite step from 0 (at edge0) to 1 (at edge1)."""
    t = np.clip((np.asarray(v, dtype=np.float64) - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def slabs(n_slices: int, slice_voxels: int, target_voxels: int = 2_000_000) -> Iterator[slice]:
    """Split the slice axis into chunks of about ``target_voxels`` voxels.

    Chunks stay below glibc's mmap threshold, so temporaries reuse heap memory instead
    of page-faulting fresh pages for every numpy operation (several times faster here).
    """
    step = max(1, target_voxels // max(1, slice_voxels))
    for start in range(0, n_slices, step):
        yield slice(start, min(n_slices, start + step))


def blur_inplane(volume: NDArray[np.float32]) -> NDArray[np.float32]:
    """Binomial [1, 2, 1]/4 blur along rows and columns (an in-plane scanner PSF).

    Works on (..., rows, cols) in place-ish; edges replicate.  Reduces white-noise
    standard deviation by ``BLUR_NOISE_GAIN``.
    """
    out = volume * np.float32(0.5)
    out[..., 1:, :] += volume[..., :-1, :] * np.float32(0.25)
    out[..., :-1, :] += volume[..., 1:, :] * np.float32(0.25)
    out[..., 0, :] += volume[..., 0, :] * np.float32(0.25)
    out[..., -1, :] += volume[..., -1, :] * np.float32(0.25)
    res = out * np.float32(0.5)
    res[..., 1:] += out[..., :-1] * np.float32(0.25)
    res[..., :-1] += out[..., 1:] * np.float32(0.25)
    res[..., 0] += out[..., 0] * np.float32(0.25)
    res[..., -1] += out[..., -1] * np.float32(0.25)
    return res


# sqrt(sum(w**2)) of [1/4, 1/2, 1/4], once per axis
BLUR_NOISE_GAIN = float(np.sqrt(6.0 / 16.0) ** 2)
