"""Voxel grid of a phantom and its DICOM / NIfTI geometry.

Conventions (the same everywhere in :mod:`awesomme.phantoms`):

* A volume is a numpy array indexed ``[slice, row, col]`` = ``[k, j, i]``.
* Patient coordinates are DICOM LPS in mm: +x towards the patient's left, +y
  posterior, +z superior.  Slices are axial with identity directions
  (ImageOrientationPatient ``1\\0\\0\\0\\1\\0``): column index i runs along +x, row index
  j along +y and slice index k along +z.
* ``origin`` is the LPS position of the centre of voxel (k, j, i) = (0, 0, 0), i.e.
  ImagePositionPatient of the first slice.
* The NIfTI affine maps (i, j, k) to RAS, the standard DICOM-to-NIfTI conversion:
  ``diag(-1, -1, 1, 1) @ affine_lps``.  NIfTI data are stored as ``volume.transpose(2, 1, 0)``
  so that ``nibabel`` data ``[i, j, k]`` and the DICOM pixel ``[k][j, i]`` are the same
  voxel; SimpleITK reads both as the same ``[k, j, i]`` array.

All spacings and positions are multiples of 1/64 mm: a DICOM DS holds them exactly
(at most 6 decimals) and so does the float32 NIfTI header, so affines read back from
either file are bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# 1/64 mm: finest step with at most 6 decimals that float32 also represents exactly.
GRID_QUANTUM_MM = 1.0 / 64.0

Shape3 = tuple[int, int, int]
Vec3 = tuple[float, float, float]


def snap_mm(value: float) -> float:
    """Round a position to the nearest multiple of 1/64 mm."""
    return round(value / GRID_QUANTUM_MM) * GRID_QUANTUM_MM


def quantize_spacing(value: float) -> float:
    """Round a spacing to the nearest multiple of 1/64 mm (at least 1/64 mm)."""
    return max(GRID_QUANTUM_MM, snap_mm(value))


def format_ds(value: float) -> str:
    """Exact decimal string (<= 16 chars) for a DS value; refuses values it would round."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    if float(text) != value or len(text) > 16:
        raise ValueError(f"{value!r} is not exactly representable as a DICOM DS")
    return text


@dataclass(frozen=True)
class Grid:
    """An axial voxel grid in LPS patient space."""

    shape: Shape3  # (slices, rows, cols)
    spacing: Vec3  # (slice spacing, row spacing, column spacing) in mm
    origin: Vec3  # LPS (x, y, z) of voxel (0, 0, 0) in mm

    def __post_init__(self) -> None:
        for v in (*self.spacing, *self.origin):
            format_ds(v)  # fail early rather than write inexact geometry

    @classmethod
    def centred(cls, shape: Shape3, spacing: Vec3, centre_xy: tuple[float, float], z_first: float) -> Grid:
        """Grid whose in-plane centre voxel sits at ``centre_xy``; slice 0 at ``z_first``."""
        _, ny, nx = shape
        _, dy, dx = spacing
        x0 = snap_mm(centre_xy[0]) - (nx // 2) * dx
        y0 = snap_mm(centre_xy[1]) - (ny // 2) * dy
        return cls(shape, spacing, (x0, y0, snap_mm(z_first)))

    @property
    def x(self) -> NDArray[np.float64]:
        """Column centres along LPS x (mm)."""
        return self.origin[0] + self.spacing[2] * np.arange(self.shape[2])

    @property
    def y(self) -> NDArray[np.float64]:
        """Row centres along LPS y (mm)."""
        return self.origin[1] + self.spacing[1] * np.arange(self.shape[1])

    @property
    def z(self) -> NDArray[np.float64]:
        """Slice centres along LPS z (mm)."""
        return self.origin[2] + self.spacing[0] * np.arange(self.shape[0])

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    def affine_lps(self) -> NDArray[np.float64]:
        """4x4 matrix mapping (i, j, k, 1) to LPS mm."""
        dz, dy, dx = self.spacing
        a = np.diag([dx, dy, dz, 1.0])
        a[:3, 3] = self.origin
        return a

    def affine_ras(self) -> NDArray[np.float64]:
        """NIfTI affine: (i, j, k, 1) to RAS mm."""
        return np.diag([-1.0, -1.0, 1.0, 1.0]) @ self.affine_lps()

    def voxel_to_lps(self, kji: tuple[int, int, int]) -> Vec3:
        k, j, i = kji
        return (
            self.origin[0] + i * self.spacing[2],
            self.origin[1] + j * self.spacing[1],
            self.origin[2] + k * self.spacing[0],
        )

    def nearest_voxel(self, xyz: Vec3) -> tuple[int, int, int]:
        """(k, j, i) of the voxel whose centre is nearest to the LPS point (clipped to the grid)."""
        idx = []
        for axis, value in ((0, xyz[2]), (1, xyz[1]), (2, xyz[0])):
            step = self.spacing[axis]
            origin = self.origin[2 - axis]
            idx.append(int(np.clip(round((value - origin) / step), 0, self.shape[axis] - 1)))
        return idx[0], idx[1], idx[2]


def patient_grid(
    shape: Shape3 | None,
    default: tuple[Shape3, tuple[float, float, float]],
    fov: float,
    coverage: float,
    z_first: float,
    n_slices: int,
    slice_spacing: float,
) -> Grid:
    """The seed's ``default`` (shape, spacing), or ``shape`` covering the same field of view and z-range."""
    if shape is None:
        shape, spacing = default
    else:
        inplane = quantize_spacing(fov / max(shape[1], shape[2]))
        spacing = (quantize_spacing(coverage / shape[0]), inplane, inplane)
    z_mid = z_first + 0.5 * (n_slices - 1) * slice_spacing
    return Grid.centred(shape, spacing, (0.0, 0.0), z_mid - 0.5 * (shape[0] - 1) * spacing[0])


def parse_shape(text: str) -> Shape3:
    """Parse ``"26x1024x1024"`` (slices x rows x cols)."""
    parts = [int(p) for p in text.lower().replace(",", "x").split("x")]
    if len(parts) != 3 or min(parts) < 1:
        raise ValueError(f"shape must be SLICESxROWSxCOLS, got {text!r}")
    return parts[0], parts[1], parts[2]
