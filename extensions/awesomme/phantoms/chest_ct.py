"""Synthetic chest CT in Hounsfield units.

Anatomy is a set of implicit shapes in LPS millimetres drawn once per seed: body
outline (superellipse), subcutaneous fat, chest-wall muscle, ribs (inclined bands),
spine, sternum, scapulae, mediastinum (heart, aorta, SVC, oesophagus, trachea),
diaphragm domes with liver / stomach below, both lungs (about -850 HU) with branching
vessels and airways, 0-3 nodules (solid, part-solid, pure ground-glass) and optional
ground-glass areas.  It is painted as a label volume, labels are mapped to HU, and
in-plane blur (scanner PSF) plus correlated noise finish the image.

Truth masks:

* ``lung``: the lung cavity of both lungs, i.e. everything inside the pleura: parenchyma
  plus the vessels, airways, nodules and ground-glass inside it (hilar vessels and
  airways outside the pleura are not lung).
* ``nodule``: solid and part-solid nodules (the whole nodule, ground-glass rim of a
  part-solid nodule included).
* ``ggo``: ground-glass areas and pure ground-glass nodules (disjoint from ``nodule``).

Everything is laid out per slab of slices so temporaries stay small: a 26x1024x1024
volume takes a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .dicom_writer import CT_IMAGE_STORAGE
from .geometry import Grid, Shape3, format_ds, patient_grid, snap_mm
from .phantom import Phantom, clinical_header, rng_for, synthetic_demographics
from .shapes import (
    BLUR_NOISE_GAIN,
    FourierField,
    LatticeNoise,
    blur_inplane,
    fibonacci_sphere,
    index_range,
    slabs,
    smoothstep,
)
from .vessel_tree import Segments, grow_tree, rasterise_segments

KIND = "chest-ct"
STRUCTURES = ("lung", "nodule", "ggo")
HU_MIN, HU_MAX = -1024, 3071  # stored as uint16 = HU + 1024 in 12 bits

Array = NDArray[np.float32]
Bool = NDArray[np.bool_]


class Tissue(IntEnum):
    AIR = 0
    SKIN = 1
    FAT = 2
    MUSCLE = 3
    RIB = 4
    CARTILAGE = 5
    VERTEBRA = 6
    VERTEBRA_CORTEX = 7
    DISC = 8
    CANAL = 9
    STERNUM = 10
    SCAPULA = 11
    MED_FAT = 12  # mediastinal / intrathoracic fat, the default filling of the cavity
    HEART = 13
    BLOOD = 14  # aorta, SVC, hilar vessels (non-contrast)
    OESOPHAGUS = 15
    AIRWAY_WALL = 16  # trachea / main bronchi outside the pleura
    AIRWAY_AIR = 17
    LIVER = 18
    ABDOMEN = 19
    STOMACH_GAS = 20
    LUNG = 21  # parenchyma
    LUNG_VESSEL = 22
    LUNG_AIRWAY_WALL = 23
    LUNG_AIRWAY_AIR = 24
    GGO_AREA = 25
    NODULE_SOLID = 26
    NODULE_GROUND_GLASS = 27  # rim of a part-solid nodule, or a pure GGO nodule


HU = {
    Tissue.AIR: -1000, Tissue.SKIN: 30, Tissue.FAT: -100, Tissue.MUSCLE: 45, Tissue.RIB: 420,
    Tissue.CARTILAGE: 110, Tissue.VERTEBRA: 230, Tissue.VERTEBRA_CORTEX: 650, Tissue.DISC: 85,
    Tissue.CANAL: 20, Tissue.STERNUM: 330, Tissue.SCAPULA: 520, Tissue.MED_FAT: -90,
    Tissue.HEART: 40, Tissue.BLOOD: 42, Tissue.OESOPHAGUS: 35, Tissue.AIRWAY_WALL: 25,
    Tissue.AIRWAY_AIR: -995, Tissue.LIVER: 58, Tissue.ABDOMEN: 42, Tissue.STOMACH_GAS: -990,
    Tissue.LUNG: -850, Tissue.LUNG_VESSEL: 40, Tissue.LUNG_AIRWAY_WALL: 10,
    Tissue.LUNG_AIRWAY_AIR: -990, Tissue.GGO_AREA: -640, Tissue.NODULE_SOLID: 38,
    Tissue.NODULE_GROUND_GLASS: -560,
}  # fmt: skip

LUNG_TISSUES = (
    Tissue.LUNG, Tissue.LUNG_VESSEL, Tissue.LUNG_AIRWAY_WALL, Tissue.LUNG_AIRWAY_AIR,
    Tissue.GGO_AREA, Tissue.NODULE_SOLID, Tissue.NODULE_GROUND_GLASS,
)  # fmt: skip


def _table(pairs: dict[Tissue, Tissue] | None = None, fill: int | None = None) -> NDArray[np.uint8]:
    """256-entry relabel table: identity except ``pairs`` (or everything -> ``fill``)."""
    table = np.arange(256, dtype=np.uint8) if fill is None else np.full(256, fill, np.uint8)
    for src, dst in (pairs or {}).items():
        table[src] = dst
    return table


HU_LUT = np.zeros(256, np.float32)
for _t, _v in HU.items():
    HU_LUT[_t] = _v
LUNG_LUT = np.zeros(256, np.uint8)
LUNG_LUT[list(LUNG_TISSUES)] = 1
# parenchyma-like labels that get the lung density gradient and texture
TEXTURE_LUT = np.zeros(256, np.float32)
TEXTURE_LUT[[Tissue.LUNG, Tissue.GGO_AREA, Tissue.NODULE_GROUND_GLASS]] = 1.0

VESSEL_REMAP = _table({Tissue.LUNG: Tissue.LUNG_VESSEL, Tissue.MED_FAT: Tissue.BLOOD})
AIRWAY_WALL_REMAP = _table(
    {Tissue.LUNG: Tissue.LUNG_AIRWAY_WALL, Tissue.LUNG_VESSEL: Tissue.LUNG_AIRWAY_WALL,
     Tissue.MED_FAT: Tissue.AIRWAY_WALL, Tissue.BLOOD: Tissue.AIRWAY_WALL}
)  # fmt: skip
AIRWAY_LUMEN_REMAP = _table(
    {Tissue.LUNG_AIRWAY_WALL: Tissue.LUNG_AIRWAY_AIR, Tissue.LUNG: Tissue.LUNG_AIRWAY_AIR,
     Tissue.LUNG_VESSEL: Tissue.LUNG_AIRWAY_AIR, Tissue.AIRWAY_WALL: Tissue.AIRWAY_AIR,
     Tissue.MED_FAT: Tissue.AIRWAY_AIR}
)  # fmt: skip

SLICE_SPACINGS = (1.25, 1.5, 2.0, 2.5, 3.0, 5.0)
KERNELS = ("STANDARD", "B30f", "LUNG", "SOFT", "B45f")


def _fourier_wiggle(rng: np.random.Generator, theta: NDArray[np.float64], amplitude: float) -> NDArray[np.float64]:
    """Smooth periodic perturbation of unit order (harmonics 2..5)."""
    out = np.zeros_like(theta)
    for h in range(2, 6):
        out += rng.normal(0, 1.0 / h) * np.cos(h * theta + rng.uniform(0, 2 * np.pi))
    return amplitude * out


@dataclass(frozen=True)
class Plane:
    """Per-(x, y) quantities of the chest for a set of points or pixels.

    Shapes broadcast against the z array given to the 3-D predicates: for a grid the
    arrays have shape (1, n_pixels) and z (n_slices, 1); for scattered points all are
    1-D of the same length.
    """

    x: Array
    y: Array
    in_cavity: Bool  # inside the pleural cavity outline (minus pleura)
    left: Bool  # x > mediastinal midline
    always_out: Bool  # mediastinal band, spine, oesophagus: never lung
    desc_aorta: Bool  # padded, vertical tube
    asc_aorta: Bool
    svc: Bool
    heart_xy: Array  # in-plane part of the padded heart ellipsoid level
    arch_s: Array  # signed distance to the arch plane
    arch_h2: Array  # squared in-plane distance to the arch centre axis
    z_diaphragm: Array
    z_apex: Array
    liver_side: Bool


class ChestAnatomy:
    """All seed-level parameters of one chest (mm, LPS; carina at z = 0)."""

    def __init__(self, rng: np.random.Generator) -> None:
        u = rng.uniform
        # --- body outline and chest wall, as functions of the polar angle
        self.a_body = u(138, 182)
        self.b_ant = self.a_body * u(0.62, 0.74)
        self.b_post = self.b_ant * u(0.86, 0.96)
        exponent = u(2.1, 2.6)
        self.xc, self.yc = u(-6, 6), u(-12, 12)
        theta = np.linspace(-np.pi, np.pi, 721)
        b = np.where(np.sin(theta) > 0, self.b_post, self.b_ant)
        r_body = (np.abs(np.cos(theta) / self.a_body) ** exponent + np.abs(np.sin(theta) / b) ** exponent) ** (
            -1.0 / exponent
        )
        r_body *= 1.0 + _fourier_wiggle(rng, theta, 0.012)
        posterior_angle = np.abs(np.angle(np.exp(1j * (theta - np.pi / 2))))  # 0 at the spine
        fat = u(5, 26) * (1.0 + 0.35 * np.cos(2 * theta) ** 2 + _fourier_wiggle(rng, theta, 0.12))
        muscle = (
            u(8, 13)
            + u(28, 38) * np.exp(-((posterior_angle / 0.42) ** 2))  # paraspinal muscles
            + u(6, 14) * np.exp(-(((posterior_angle - 2.35) / 0.35) ** 2))  # pectorals
        )
        self.theta_table = theta
        self.r_body = r_body
        self.t_fat = fat
        self.t_muscle = muscle
        self.r_cavity = r_body - fat - muscle
        self.rib_drop_table = u(80, 110) * (posterior_angle / np.pi) ** 1.3
        self.cartilage_table = posterior_angle > u(2.35, 2.6)
        self.rib_band_table = (posterior_angle > 0.2) & (posterior_angle < 2.9)

        def cavity_at(angle: float) -> float:
            return float(np.interp(angle, theta, self.r_cavity))

        self.y_cav_ant = self.yc - cavity_at(-np.pi / 2)
        self.y_cav_post = self.yc + cavity_at(np.pi / 2)
        self.a_cav = 0.5 * (cavity_at(0.0) + cavity_at(np.pi))
        depth = self.y_cav_post - self.y_cav_ant
        self.depth = depth

        # --- z landmarks
        self.z_apex = u(95, 125)
        self.z_dome_right = -u(115, 150)
        self.z_dome_left = self.z_dome_right - u(10, 25)
        self.recess = u(30, 50)
        self.apex_drop = u(40, 60)

        # --- spine, mediastinum
        self.x_mid = self.xc + u(-2, 5)
        self.vb_rx, self.vb_ry = u(17, 22), u(14, 18)
        self.y_vb = self.y_cav_post - self.vb_ry + 4
        self.y_canal = self.y_vb + self.vb_ry + 9
        self.disc_pitch, self.disc_phase = u(24, 29), u(0, 30)
        self.trachea_xy = (self.x_mid + u(-3, 3), self.y_vb - self.vb_ry - u(22, 28))
        self.trachea_r = u(7.5, 9.5)
        self.oesophagus_xy = (self.trachea_xy[0] + u(7, 11), self.y_vb - self.vb_ry - 8.0)
        self.desc_r = u(10, 13)
        self.desc_xy = (self.x_mid + self.vb_rx + self.desc_r + u(4, 8), self.y_vb - 0.3 * self.vb_ry)
        self.asc_r = u(13, 17)
        self.asc_xy = (self.x_mid + u(-6, 0), self.y_cav_ant + u(38, 48))
        self.svc_r = u(8, 10)
        self.svc_xy = (self.asc_xy[0] - self.asc_r - self.svc_r - 3, self.asc_xy[1] + u(3, 8))
        self.heart_r = (u(50, 62), u(38, 48), u(45, 56))
        self.heart_c = (
            self.x_mid + u(22, 38),
            self.y_cav_ant + self.heart_r[1] + u(2, 8),
            self.z_dome_left + self.heart_r[2] * u(0.55, 0.75),
        )
        self.z_heart_top = self.heart_c[2] + self.heart_r[2]
        self.z_svc_low = self.z_heart_top + u(0, 15)
        # aortic arch: upper half circle joining ascending and descending aorta
        arch_top = u(22, 40)
        pa = np.array(self.asc_xy)
        pd = np.array(self.desc_xy)
        half = 0.5 * float(np.linalg.norm(pd - pa))
        self.arch_radius = half
        self.arch_z0 = arch_top - half
        self.arch_centre = (0.5 * (pa + pd)).tolist()
        direction = (pd - pa) / (2 * half)
        self.arch_normal = (-direction[1], direction[0])
        self.pad = 3.5  # fat around mediastinal organs before lung begins
        self.band_post = u(13, 17)
        self.band_ant = u(6, 12)
        self.liver_x = self.x_mid + u(5, 25)
        self.stomach_c = (self.x_mid + 0.45 * self.a_cav, self.y_cav_ant + 0.35 * depth, self.z_dome_left - u(20, 35))
        self.stomach_r = (u(25, 40), u(20, 30), u(12, 22))
        self.sternum = (self.y_cav_ant - 5.0, u(12, 16), u(5, 7), u(60, 80), -u(95, 120))  # y, rx, ry, z top/bottom
        self.scapula_z = -u(40, 80)
        self.rib_pitch = u(22, 28)
        self.rib_height = u(8.5, 11)
        self.rib_thickness = u(6, 8)
        self.rib_top = self.z_apex + u(5, 15)
        self.hilum_right = np.array([self.x_mid - u(42, 52), self.trachea_xy[1] + u(4, 12), -u(15, 25)])
        self.hilum_left = np.array([self.x_mid + u(44, 54), self.trachea_xy[1] + u(6, 14), -u(22, 32)])

        # --- acquisition
        self.fov = 8.0 * float(np.clip(np.ceil((2 * self.a_body + u(30, 90)) / 8.0), 39, 57))
        self.slice_spacing = float(rng.choice(SLICE_SPACINGS))
        coverage = u(160, 330)
        self.n_slices = int(np.clip(round(coverage / self.slice_spacing), 30, 120))
        self.coverage = self.n_slices * self.slice_spacing
        z_centre = 0.5 * (self.z_apex + self.z_dome_left - 30.0) + u(-15, 15)
        self.z_first = snap_mm(z_centre - 0.5 * (self.n_slices - 1) * self.slice_spacing)
        self.noise_hu = u(9, 28)
        self.kernel = str(rng.choice(KERNELS))
        self.kvp = int(rng.choice([100, 120, 120, 140]))
        self.ma = int(rng.integers(80, 350))

    # ------------------------------------------------------------------ geometry
    def grid(self, shape: Shape3 | None) -> Grid:
        """Default grid of this seed, or ``shape`` covering the same field of view and z-range."""
        default = ((self.n_slices, 512, 512), (self.slice_spacing, self.fov / 512, self.fov / 512))
        return patient_grid(shape, default, self.fov, self.coverage, self.z_first, self.n_slices, self.slice_spacing)

    @property
    def z_range(self) -> tuple[float, float]:
        """Continuous z-range of the default coverage (same for every grid of this seed)."""
        return self.z_first, self.z_first + (self.n_slices - 1) * self.slice_spacing

    def _polar(self, x: Array, y: Array) -> tuple[Array, Array]:
        dx, dy = x - np.float32(self.xc), y - np.float32(self.yc)
        return np.hypot(dx, dy), np.arctan2(dy, dx)

    def _interp(self, theta: Array, table: NDArray[Any]) -> Array:
        return np.interp(theta, self.theta_table, table).astype(np.float32)

    def plane(self, x: Array, y: Array) -> Plane:
        """Per-(x, y) quantities at the given coordinates (any matching shapes)."""
        x = np.asarray(x, np.float32)
        y = np.asarray(y, np.float32)
        r, theta = self._polar(x, y)
        in_cavity = r < self._interp(theta, self.r_cavity) - 2.0  # pleura
        left = x > self.x_mid
        pad = self.pad
        # mediastinal band: narrow anteriorly (junction lines), wider posteriorly
        w = self.band_ant + (self.band_post - self.band_ant) * smoothstep(
            self.y_cav_ant + 0.35 * self.depth, self.y_vb - self.vb_ry - 10, y
        ).astype(np.float32)
        band = np.abs(x - self.x_mid) < w
        spine = ((x - self.x_mid) / (self.vb_rx + pad)) ** 2 + ((y - self.y_vb) / (self.vb_ry + pad)) ** 2 < 1
        oes = np.hypot(x - self.oesophagus_xy[0], y - self.oesophagus_xy[1]) < 7 + pad

        def tube(xy: tuple[float, float], radius: float) -> Bool:
            return np.hypot(x - xy[0], y - xy[1]) < radius + pad

        hx, hy, _ = self.heart_c
        ha, hb, _ = self.heart_r
        heart_xy = ((x - hx) / (ha + pad)) ** 2 + ((y - hy) / (hb + pad)) ** 2
        cx, cy = self.arch_centre
        nx, ny = self.arch_normal
        arch_s = (x - cx) * nx + (y - cy) * ny
        arch_h2 = (x - cx) ** 2 + (y - cy) ** 2

        # diaphragm domes (lower towards the chest wall: costophrenic recesses)
        x_dome = np.where(left, self.x_mid + 0.45 * self.a_cav, self.x_mid - 0.45 * self.a_cav)
        y_dome = self.y_cav_ant + 0.5 * self.depth
        rho2 = ((x - x_dome) / (0.55 * self.a_cav)) ** 2 + ((y - y_dome) / (0.55 * self.depth)) ** 2
        posterior = np.clip((y - y_dome) / (0.5 * self.depth), 0, 1)
        z_dome = np.where(left, self.z_dome_left, self.z_dome_right)
        z_diaphragm = z_dome - self.recess * np.minimum(rho2, 2.0) - 15.0 * posterior
        # apices: dome-shaped tops
        x_ap = np.where(left, self.x_mid + 0.4 * self.a_cav, self.x_mid - 0.4 * self.a_cav)
        y_ap = self.y_cav_ant + 0.6 * self.depth
        rho2_ap = ((x - x_ap) / (0.5 * self.a_cav)) ** 2 + ((y - y_ap) / (0.45 * self.depth)) ** 2
        z_apex = self.z_apex - self.apex_drop * rho2_ap

        return Plane(
            x=x,
            y=y,
            in_cavity=in_cavity,
            left=left,
            always_out=band | spine | oes,
            desc_aorta=tube(self.desc_xy, self.desc_r),
            asc_aorta=tube(self.asc_xy, self.asc_r),
            svc=tube(self.svc_xy, self.svc_r),
            heart_xy=heart_xy.astype(np.float32),
            arch_s=arch_s.astype(np.float32),
            arch_h2=arch_h2.astype(np.float32),
            z_diaphragm=z_diaphragm.astype(np.float32),
            z_apex=z_apex.astype(np.float32),
            liver_side=x < self.liver_x,
        )

    def _arch_distance(self, p: Plane, z: Array) -> Array:
        dz = z - np.float32(self.arch_z0)
        inplane = np.sqrt(np.maximum(p.arch_h2 + dz * dz - p.arch_s**2, 0.0))
        d = np.sqrt(p.arch_s**2 + (inplane - np.float32(self.arch_radius)) ** 2)
        return np.where(dz >= 0, d, np.float32(1e6))

    def _heart_level(self, p: Plane, z: Array, pad: float) -> Array:
        hz, hc = self.heart_c[2], self.heart_r[2]
        if pad == self.pad:
            return p.heart_xy + ((z - np.float32(hz)) / np.float32(hc + pad)) ** 2
        hx, hy, _ = self.heart_c
        ha, hb, _ = self.heart_r
        return (
            ((p.x - hx) / (ha + pad)) ** 2 + ((p.y - hy) / (hb + pad)) ** 2 + ((z - np.float32(hz)) / (hc + pad)) ** 2
        )

    def lung_region(self, p: Plane, z: Array) -> Bool:
        """Inside either lung cavity (the ``lung`` truth, before lesions and vessels)."""
        z = np.asarray(z, np.float32)
        zmin, zmax = float(np.min(z)), float(np.max(z))
        inside = p.in_cavity & ~p.always_out & (z > p.z_diaphragm) & (z < p.z_apex)
        inside &= ~(p.desc_aorta & (z < self.arch_z0))
        inside &= ~(p.asc_aorta & (z > self.z_heart_top - 25) & (z < self.arch_z0))
        inside &= ~(p.svc & (z > self.z_svc_low))
        hz, hc = self.heart_c[2], self.heart_r[2] + self.pad
        if zmin < hz + hc and zmax > hz - hc:
            inside &= self._heart_level(p, z, self.pad) >= 1
        if zmax > self.arch_z0 - self.pad:
            inside &= self._arch_distance(p, z) >= max(self.asc_r, self.desc_r) + self.pad
        return inside

    def lung_at_points(self, x: NDArray[Any], y: NDArray[Any], z: NDArray[Any]) -> Bool:
        return self.lung_region(self.plane(x, y), np.asarray(z, np.float32))

    def cavity_labels(self, p: Plane, z: Array) -> NDArray[np.uint8]:
        """Labels inside the cavity outline: lungs, mediastinum, upper abdomen."""
        z = np.asarray(z, np.float32)
        lung = self.lung_region(p, z)
        below = z < p.z_diaphragm
        lab = np.where(below, np.where(p.liver_side, Tissue.LIVER, Tissue.ABDOMEN), Tissue.MED_FAT).astype(np.uint8)
        sx, sy, sz = self.stomach_c
        rx, ry, rz = self.stomach_r
        zmin, zmax = float(np.min(z)), float(np.max(z))
        if zmin < sz + rz and zmax > sz - rz:
            gas = ((p.x - sx) / rx) ** 2 + ((p.y - sy) / ry) ** 2 + ((z - sz) / rz) ** 2 < 1
            lab[gas & below] = Tissue.STOMACH_GAS
        lab[lung] = Tissue.LUNG
        hz, hc = self.heart_c[2], self.heart_r[2]
        if zmin < hz + hc and zmax > hz - hc:
            lab[self._heart_level(p, z, 0.0) < 1] = Tissue.HEART
        desc = np.hypot(p.x - self.desc_xy[0], p.y - self.desc_xy[1]) < self.desc_r
        lab[desc & (z < self.arch_z0)] = Tissue.BLOOD
        asc = np.hypot(p.x - self.asc_xy[0], p.y - self.asc_xy[1]) < self.asc_r
        lab[asc & (z > self.z_heart_top - 25) & (z < self.arch_z0)] = Tissue.BLOOD
        svc = np.hypot(p.x - self.svc_xy[0], p.y - self.svc_xy[1]) < self.svc_r
        lab[svc & (z > self.z_svc_low)] = Tissue.BLOOD
        if zmax > self.arch_z0 - self.pad:
            arch_r = 0.5 * (self.asc_r + self.desc_r)
            lab[self._arch_distance(p, z) < arch_r] = Tissue.BLOOD
        oes = np.hypot(p.x - self.oesophagus_xy[0], p.y - self.oesophagus_xy[1]) < 7
        lab[oes & ~below] = Tissue.OESOPHAGUS
        return lab


# ---------------------------------------------------------------------- 2-D body wall
@dataclass(frozen=True)
class WallPixels:
    """Static in-plane layout (same for every slice) and pixel lists for z-dependent parts."""

    wall: NDArray[np.uint8]  # (rows, cols): air / skin / fat / muscle / cavity placeholder
    cavity_idx: NDArray[np.intp]
    cavity_plane: Plane
    rib_idx: NDArray[np.intp]
    rib_drop: Array
    rib_cartilage: Bool
    spine_idx: NDArray[np.intp]
    spine_label: NDArray[np.uint8]
    spine_body: Bool
    spine_posterior: Bool
    sternum_idx: NDArray[np.intp]
    sternum_label: NDArray[np.uint8]
    scapula_idx: NDArray[np.intp]
    lung_gradient: Array  # (rows, cols) HU added to parenchyma: dependent (posterior) lung is denser


def _wall_pixels(anat: ChestAnatomy, grid: Grid) -> WallPixels:
    x = grid.x.astype(np.float32)[None, :]
    y = grid.y.astype(np.float32)[:, None]
    r, theta = anat._polar(x, y)
    r_body = anat._interp(theta, anat.r_body)
    depth = r_body - r
    t_fat = anat._interp(theta, anat.t_fat)
    t_wall = t_fat + anat._interp(theta, anat.t_muscle)
    wall = np.full(r.shape, Tissue.AIR, np.uint8)
    wall[depth > 0] = Tissue.SKIN
    wall[depth > 1.5] = Tissue.FAT
    wall[depth > t_fat] = Tissue.MUSCLE
    cavity = depth > t_wall
    wall[cavity] = Tissue.MED_FAT

    flat_x = np.broadcast_to(x, r.shape).ravel()
    flat_y = np.broadcast_to(y, r.shape).ravel()
    cavity_idx = np.flatnonzero(cavity)
    plane = anat.plane(flat_x[cavity_idx][None, :], flat_y[cavity_idx][None, :])

    band = (depth > t_wall - anat.rib_thickness) & (depth <= t_wall) & (anat._interp(theta, anat.rib_band_table) > 0.5)
    rib_idx = np.flatnonzero(band)
    rib_drop = anat._interp(theta, anat.rib_drop_table).ravel()[rib_idx]
    rib_cart = anat._interp(theta, anat.cartilage_table).ravel()[rib_idx] > 0.5

    # spine: vertebral body (cortex rim), canal, neural arch, spinous and transverse processes
    xm = anat.x_mid
    body_level = ((x - xm) / anat.vb_rx) ** 2 + ((y - anat.y_vb) / anat.vb_ry) ** 2
    body = body_level < 1
    cortex = body & (((x - xm) / (anat.vb_rx - 1.8)) ** 2 + ((y - anat.y_vb) / (anat.vb_ry - 1.8)) ** 2 >= 1)
    canal_r = np.hypot(x - xm, y - anat.y_canal)
    canal = canal_r < 7.5
    arch = (canal_r >= 7.5) & (canal_r < 12.5) & (y > anat.y_vb + anat.vb_ry - 2)
    spinous = ((x - xm) / 4.5) ** 2 + ((y - anat.y_canal - 24) / 13) ** 2 < 1
    transverse = (((np.abs(x - xm) - 24) / 11) ** 2 + ((y - anat.y_canal + 2) / 5) ** 2) < 1
    spine = body | canal | arch | spinous | transverse
    spine_label = np.where(
        cortex | arch, Tissue.VERTEBRA_CORTEX, np.where(canal, Tissue.CANAL, Tissue.VERTEBRA)
    ).astype(np.uint8)
    spine_idx = np.flatnonzero(spine)

    sy, srx, sry, _, _ = anat.sternum
    st_level = ((x - xm) / srx) ** 2 + ((y - sy) / sry) ** 2
    sternum = st_level < 1
    sternum_idx = np.flatnonzero(sternum)
    st_label = np.where(st_level < 0.55, Tissue.STERNUM, Tissue.VERTEBRA_CORTEX).astype(np.uint8)

    posterior_angle = np.abs(np.angle(np.exp(1j * (theta - np.pi / 2))))
    scapula = (posterior_angle > 0.5) & (posterior_angle < 1.25) & (depth > t_fat + 2) & (depth < t_fat + 6.5)
    scapula_idx = np.flatnonzero(scapula)

    gradient = 28.0 * np.clip((y - anat.yc) / anat.b_post, -1, 1) + np.zeros_like(x)
    return WallPixels(
        wall=wall,
        cavity_idx=cavity_idx,
        cavity_plane=plane,
        rib_idx=rib_idx,
        rib_drop=rib_drop,
        rib_cartilage=rib_cart,
        spine_idx=spine_idx,
        spine_label=spine_label.ravel()[spine_idx],
        spine_body=body.ravel()[spine_idx],
        spine_posterior=(arch | spinous | transverse).ravel()[spine_idx],
        sternum_idx=sternum_idx,
        sternum_label=st_label.ravel()[sternum_idx],
        scapula_idx=scapula_idx,
        lung_gradient=gradient.astype(np.float32),
    )


def _paint_anatomy(anat: ChestAnatomy, grid: Grid, labels: NDArray[np.uint8]) -> WallPixels:
    px = _wall_pixels(anat, grid)
    z_all = grid.z.astype(np.float32)
    n_pixels = grid.shape[1] * grid.shape[2]
    half_rib = anat.rib_height / (2 * anat.rib_pitch)
    for sl in slabs(grid.shape[0], n_pixels):
        z = z_all[sl][:, None]
        flat = labels[sl].reshape(z.shape[0], -1)
        flat[:] = px.wall.ravel()[None, :]
        flat[:, px.cavity_idx] = anat.cavity_labels(px.cavity_plane, z)

        # ribs: rib i crosses height rib_top - i*pitch - drop(angle)
        u = (anat.rib_top - px.rib_drop[None, :] - z) / anat.rib_pitch
        i = np.rint(u)
        in_rib = (np.abs(u - i) < half_rib) & (i >= 0) & (i < 12)
        ribs = flat[:, px.rib_idx]
        ribs[in_rib] = np.where(px.rib_cartilage, Tissue.CARTILAGE, Tissue.RIB)[np.nonzero(in_rib)[1]]
        flat[:, px.rib_idx] = ribs

        # scapulae in the upper chest, sternum along the front
        upper = z[:, 0] > anat.scapula_z
        if upper.any():
            flat[np.ix_(np.flatnonzero(upper), px.scapula_idx)] = Tissue.SCAPULA
        _, _, _, st_top, st_bottom = anat.sternum
        on_sternum = np.flatnonzero((z[:, 0] < st_top) & (z[:, 0] > st_bottom))
        if on_sternum.size:
            flat[np.ix_(on_sternum, px.sternum_idx)] = px.sternum_label[None, :]

        # spine with intervertebral discs every disc_pitch mm; neural arches skip the disc levels
        phase = ((z - anat.disc_phase) / anat.disc_pitch) % 1.0
        disc = phase < 6.0 / anat.disc_pitch
        spine = np.broadcast_to(px.spine_label[None, :], (z.shape[0], px.spine_idx.size)).copy()
        spine[disc & px.spine_body[None, :]] = Tissue.DISC
        gap = (phase > 0.85) & px.spine_posterior[None, :]
        current = flat[:, px.spine_idx]
        spine[gap] = current[gap]
        flat[:, px.spine_idx] = spine
    return px


# ---------------------------------------------------------------------- trees
def _airways(anat: ChestAnatomy, rng: np.random.Generator) -> Segments:
    """Trachea, main bronchi and a few generations of bronchi (radius = lumen radius)."""
    tx, ty = anat.trachea_xy
    carina = np.array([tx, ty, 0.0])
    top = np.array([tx, ty - 8.0, anat.z_apex + 80.0])
    roots = Segments(
        np.array([top, carina, carina]),
        np.array([carina, anat.hilum_right, anat.hilum_left]),
        np.array([anat.trachea_r, 0.75 * anat.trachea_r, 0.68 * anat.trachea_r]),
    )
    lobar = _hilar_roots(anat, rng, radius=0.45 * anat.trachea_r, length=(18, 28))
    tree = grow_tree(
        rng, lobar, anat.lung_at_points, min_radius=1.1, max_generations=5,
        radius_ratio=(0.7, 0.82), length_per_radius=(4.0, 7.0), spread=0.35,
    )  # fmt: skip
    return Segments.concat([roots, tree])


def _hilar_roots(anat: ChestAnatomy, rng: np.random.Generator, radius: float, length: tuple[float, float]) -> Segments:
    """Lobar trunks leaving each hilum: up, lateral, down (and forward on the right)."""
    a, b, r = [], [], []
    for hilum, side in ((anat.hilum_right, -1.0), (anat.hilum_left, 1.0)):
        directions = [(0.5 * side, 0.1, 1.0), (1.0 * side, -0.5, -0.1), (0.6 * side, 0.4, -1.0)]
        if side < 0:
            directions.append((0.8 * side, -0.8, -0.5))  # right middle lobe
        for d in directions:
            v = np.array(d) + rng.normal(0, 0.15, 3)
            v /= np.linalg.norm(v)
            a.append(hilum)
            b.append(hilum + v * rng.uniform(*length))
            r.append(radius * rng.uniform(0.85, 1.1))
    return Segments(np.array(a), np.array(b), np.array(r))


def _fan_roots(
    anat: ChestAnatomy,
    rng: np.random.Generator,
    origins: list[NDArray[np.float64]],
    count: int,
    radius: tuple[float, float],
    length: tuple[float, float],
) -> Segments:
    """``count`` trunks per origin, in directions that reach into the lung."""
    a, b, r = [], [], []
    directions = fibonacci_sphere(64)
    for origin in origins:
        reach = origin + directions * 30.0
        good = directions[anat.lung_at_points(reach[:, 0], reach[:, 1], reach[:, 2])]
        if len(good) == 0:
            continue
        for d in good[rng.choice(len(good), size=min(count, len(good)), replace=False)]:
            v = d + rng.normal(0, 0.1, 3)
            v /= np.linalg.norm(v)
            a.append(origin)
            b.append(origin + v * rng.uniform(*length))
            r.append(rng.uniform(*radius))
    return Segments(np.array(a).reshape(-1, 3), np.array(b).reshape(-1, 3), np.array(r))


def _vessels(anat: ChestAnatomy, rng: np.random.Generator) -> Segments:
    """Pulmonary arteries (trunk, hila, segmental fans) and veins (from the left atrium)."""
    hx, hy, hz = anat.heart_c
    trunk_base = np.array([hx - 12.0, anat.y_cav_ant + 28.0, anat.z_heart_top - 10.0])
    trunk_top = np.array([hx - 8.0, anat.trachea_xy[1] - 15.0, -30.0])
    hila = [anat.hilum_right + np.array([0.0, -6.0, 0.0]), anat.hilum_left + np.array([0.0, -6.0, 4.0])]
    mains = Segments(
        np.array([trunk_base, trunk_top, trunk_top]),
        np.array([trunk_top, hila[0], hila[1]]),
        np.array([13.0, 10.0, 10.0]),
    )
    arteries = _fan_roots(anat, rng, hila, 9, (3.5, 5.0), (12, 22))
    atrium = np.array([hx - 10.0, hy + 0.75 * anat.heart_r[1], hz + 0.3 * anat.heart_r[2]])
    vein_origins = [atrium + np.array([side * 25.0, 0.0, dz]) for side in (-1.0, 1.0) for dz in (12.0, -8.0)]
    veins = _fan_roots(anat, rng, vein_origins, 3, (3.5, 5.0), (30, 45))
    tree = grow_tree(
        rng, Segments.concat([arteries, veins]), anat.lung_at_points, min_radius=0.6,
        max_generations=10, radius_ratio=(0.72, 0.86), length_per_radius=(4.0, 8.0), spread=0.25,
    )  # fmt: skip
    return Segments.concat([mains, tree])


# ---------------------------------------------------------------------- lesions
@dataclass(frozen=True)
class Nodule:
    nodule_type: str  # "solid" | "part-solid" | "ggo"
    centre: tuple[float, float, float]  # LPS mm (continuous; snapped to the grid when painted)
    diameter: float
    core_diameter: float  # solid core of a part-solid nodule, else 0
    lobulation: FourierField
    lobulation_amplitude: float
    spicules: tuple[tuple[tuple[float, float, float], float], ...]  # (unit direction, length factor)


def _point(v: NDArray[Any]) -> tuple[float, float, float]:
    return float(v[0]), float(v[1]), float(v[2])


def _sample_lung_point(
    anat: ChestAnatomy, rng: np.random.Generator, clearance: float, avoid: list[tuple[NDArray[Any], float]]
) -> NDArray[np.float64] | None:
    """A point whose whole ``clearance`` ball is inside a lung and within the coverage."""
    z_lo, z_hi = anat.z_range
    if z_hi - z_lo < 2 * clearance:
        return None
    shell = fibonacci_sphere(26)
    for _ in range(40):
        c = np.stack(
            [
                rng.uniform(anat.xc - anat.a_cav, anat.xc + anat.a_cav, 64),
                rng.uniform(anat.y_cav_ant, anat.y_cav_post, 64),
                rng.uniform(z_lo + clearance, z_hi - clearance, 64),
            ],
            axis=1,
        )
        ok = anat.lung_at_points(c[:, 0], c[:, 1], c[:, 2])
        for centre, radius in avoid:
            ok &= np.linalg.norm(c - centre, axis=1) > radius + clearance + 4.0
        for idx in np.flatnonzero(ok):
            pts = c[idx] + clearance * shell
            if anat.lung_at_points(pts[:, 0], pts[:, 1], pts[:, 2]).all():
                return c[idx]
    return None


def _sample_nodules(anat: ChestAnatomy, rng: np.random.Generator) -> list[Nodule]:
    count = int(rng.choice([0, 1, 1, 2, 2, 3]))
    nodules: list[Nodule] = []
    avoid: list[tuple[NDArray[Any], float]] = []
    for _ in range(count):
        nodule_type = str(rng.choice(["solid", "solid", "part-solid", "ggo"], p=[0.3, 0.25, 0.27, 0.18]))
        diameter = float(np.exp(rng.uniform(np.log(4.0), np.log(30.0))))
        if nodule_type != "solid":
            diameter = max(diameter, 6.0)
        amplitude = rng.uniform(0.04, 0.12) if nodule_type == "solid" else rng.uniform(0.03, 0.07)
        lobulation = FourierField(rng, wavelength_mm=rng.uniform(1.5, 3.0), n_waves=10)
        spicules: tuple[tuple[tuple[float, float, float], float], ...] = ()
        if nodule_type == "solid" and diameter >= 10 and rng.random() < 0.5:
            dirs = fibonacci_sphere(int(rng.integers(4, 8))) + rng.normal(0, 0.3, (1, 3))
            dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
            spicules = tuple(((float(d[0]), float(d[1]), float(d[2])), float(rng.uniform(1.25, 1.6))) for d in dirs)
        core = diameter * rng.uniform(0.3, 0.6) if nodule_type == "part-solid" else 0.0
        reach = 0.5 * diameter * (1.0 + amplitude) * (1.6 if spicules else 1.0) + 3.0
        while diameter >= 4.0:
            centre = _sample_lung_point(anat, rng, reach, avoid)
            if centre is not None:
                break
            diameter *= 0.8
            core *= 0.8
            reach = 0.5 * diameter * (1.0 + amplitude) * (1.6 if spicules else 1.0) + 3.0
        else:
            continue
        avoid.append((centre, reach))
        nodules.append(Nodule(nodule_type, _point(centre), diameter, core, lobulation, amplitude, spicules))
    return nodules


@dataclass(frozen=True)
class GroundGlassArea:
    centre: tuple[float, float, float]
    radius: float
    texture: LatticeNoise


def _sample_ggo_areas(anat: ChestAnatomy, rng: np.random.Generator) -> list[GroundGlassArea]:
    if rng.random() > 0.3:
        return []
    areas: list[GroundGlassArea] = []
    for _ in range(int(rng.integers(1, 3))):
        radius = rng.uniform(15, 40)
        centre = _sample_lung_point(anat, rng, 6.0, [])
        if centre is None:
            continue
        lo = centre - radius
        hi = centre + radius
        areas.append(GroundGlassArea(_point(centre), radius, LatticeNoise(rng, _point(lo), _point(hi), 7.0)))
    return areas


def _box(grid: Grid, lo: NDArray[Any], hi: NDArray[Any]) -> tuple[slice, slice, slice] | None:
    i0, i1 = index_range(grid.x, lo[0], hi[0])
    j0, j1 = index_range(grid.y, lo[1], hi[1])
    k0, k1 = index_range(grid.z, lo[2], hi[2])
    if i1 <= i0 or j1 <= j0 or k1 <= k0:
        return None
    return slice(k0, k1), slice(j0, j1), slice(i0, i1)


def _paint_ggo_area(area: GroundGlassArea, grid: Grid, labels: NDArray[np.uint8], ggo: NDArray[np.uint8]) -> None:
    c = np.array(area.centre)
    box = _box(grid, c - area.radius, c + area.radius)
    if box is None:
        return
    x, y, z = grid.x[box[2]], grid.y[box[1]], grid.z[box[0]]
    rho2 = (
        ((x[None, None, :] - c[0]) ** 2 + (y[None, :, None] - c[1]) ** 2 + (z[:, None, None] - c[2]) ** 2)
        / area.radius**2
    ).astype(np.float32)
    patchy = area.texture.on_grid(x, y, z) * np.float32(0.6) + np.float32(1.2) * (1 - rho2)
    sub = labels[box]
    hit = (patchy > 0.55) & (sub == Tissue.LUNG)  # vessels stay visible through ground glass
    sub[hit] = Tissue.GGO_AREA
    ggo[box][hit] = 1


def _paint_nodule(
    nodule: Nodule, grid: Grid, labels: NDArray[np.uint8], solid_truth: NDArray[np.uint8], ggo_truth: NDArray[np.uint8]
) -> dict[str, Any]:
    k, j, i = grid.nearest_voxel(nodule.centre)
    c = np.array(grid.voxel_to_lps((k, j, i)))
    radius = 0.5 * nodule.diameter
    reach = radius * (1 + nodule.lobulation_amplitude) * (1.7 if nodule.spicules else 1.0) + 1.0
    box = _box(grid, c - reach, c + reach)
    assert box is not None
    x = (grid.x[box[2]] - c[0]).astype(np.float32)[None, None, :]
    y = (grid.y[box[1]] - c[1]).astype(np.float32)[None, :, None]
    z = (grid.z[box[0]] - c[2]).astype(np.float32)[:, None, None]
    dist = np.sqrt(x * x + y * y + z * z)
    unit = np.maximum(dist, np.float32(1e-6))
    wobble = nodule.lobulation(x / unit, y / unit, z / unit)
    level = dist / (np.float32(radius) * (1 + np.float32(nodule.lobulation_amplitude) * wobble))
    inside = level < 1
    for direction, factor in nodule.spicules:
        d = np.asarray(direction, np.float32)
        t = np.clip(x * d[0] + y * d[1] + z * d[2], 0, radius * factor)
        off = (x - t * d[0]) ** 2 + (y - t * d[1]) ** 2 + (z - t * d[2]) ** 2
        inside |= off < np.float32(0.7**2) * (1 - t / (radius * factor)) + np.float32(0.15)
    sub = labels[box]
    in_lung = LUNG_LUT[sub].astype(bool)
    inside &= in_lung
    if nodule.nodule_type == "solid":
        sub[inside] = Tissue.NODULE_SOLID
        solid_truth[box][inside] = 1
    else:
        # ground glass keeps vessels visible; part-solid gets a solid core
        glass = inside & ((sub == Tissue.LUNG) | (sub == Tissue.GGO_AREA) | (sub == Tissue.LUNG_AIRWAY_WALL))
        sub[glass] = Tissue.NODULE_GROUND_GLASS
        if nodule.nodule_type == "part-solid":
            core = inside & (level < nodule.core_diameter / nodule.diameter)
            sub[core] = Tissue.NODULE_SOLID
            solid_truth[box][inside] = 1
            ggo_truth[box][inside] = 0
        else:
            ggo_truth[box][inside] = 1
    volume = float(inside.sum()) * grid.voxel_volume_mm3
    side = "left" if c[0] > 0 else "right"
    return {
        "type": nodule.nodule_type,
        "diameter_mm": nodule.diameter,
        "solid_core_diameter_mm": nodule.core_diameter,
        "centre_voxel": [k, j, i],
        "centre_mm": [float(v) for v in c],
        "volume_mm3": volume,
        "equivalent_diameter_mm": float((6.0 * volume / np.pi) ** (1.0 / 3.0)),
        "spiculated": bool(nodule.spicules),
        "side": side,
    }


# ---------------------------------------------------------------------- entry point
def synthesize(seed: int, shape: Shape3 | None = None) -> Phantom:
    """Build one chest CT phantom in memory (see the module docstring)."""
    anat = ChestAnatomy(rng_for(KIND, seed, "anatomy"))
    grid = anat.grid(shape)
    airways = _airways(anat, rng_for(KIND, seed, "airways"))
    vessels = _vessels(anat, rng_for(KIND, seed, "vessels"))
    lesion_rng = rng_for(KIND, seed, "lesions")
    nodules = _sample_nodules(anat, lesion_rng)
    ggo_areas = _sample_ggo_areas(anat, lesion_rng)

    labels = np.empty(grid.shape, np.uint8)
    wall = _paint_anatomy(anat, grid, labels)
    rasterise_segments(labels, grid, vessels, VESSEL_REMAP)
    wall_width = airways.radius * 0.22 + 0.6
    rasterise_segments(labels, grid, Segments(airways.a, airways.b, airways.radius + wall_width), AIRWAY_WALL_REMAP)
    rasterise_segments(labels, grid, airways, AIRWAY_LUMEN_REMAP)

    nodule_truth = np.zeros(grid.shape, np.uint8)
    ggo_truth = np.zeros(grid.shape, np.uint8)
    for area in ggo_areas:
        _paint_ggo_area(area, grid, labels, ggo_truth)
    nodule_info = [_paint_nodule(n, grid, labels, nodule_truth, ggo_truth) for n in nodules]
    for idx, info in enumerate(nodule_info, start=1):
        info["id"] = idx
    ggo_truth[nodule_truth > 0] = 0

    hu, lung_truth = _render(
        anat, grid, labels, wall, rng_for(KIND, seed, "texture"), rng_for(KIND, seed, f"noise/{grid.shape}")
    )
    demo = synthetic_demographics(rng_for(KIND, seed, "patient"), seed, "CHEST", "CT", (45, 82))
    voxel_ml = grid.voxel_volume_mm3 / 1000.0
    ggo_area_info = []
    for area in ggo_areas:
        ggo_area_info.append({"centre_mm": list(area.centre), "radius_mm": area.radius})
    clinical: dict[str, Any] = {
        **clinical_header(KIND, seed, demo),
        "nodules": nodule_info,
        "n_nodules": len(nodule_info),
        "ggo_areas": ggo_area_info,
        "ggo_volume_ml": float(ggo_truth.sum()) * voxel_ml,
        "lung_volume_ml": float(lung_truth.sum()) * voxel_ml,
        "noise_hu": anat.noise_hu,
        "notes": {
            "centre_voxel": "[slice, row, col] index of the DICOM series (slices sorted by z)",
            "centre_mm": "[x, y, z] DICOM patient coordinates (LPS)",
            "diameter_mm": "nominal diameter; equivalent_diameter_mm from the voxelised mask",
            "lung": "lung cavity incl. vessels, airways, nodules and ground glass inside the pleura",
            "nodule": "solid and part-solid nodules (whole nodule)",
            "ggo": "ground-glass areas and pure ground-glass nodules",
        },
    }
    dicom = {
        "KVP": str(anat.kvp),
        "XRayTubeCurrent": anat.ma,
        "ExposureTime": 500,
        "ConvolutionKernel": anat.kernel,
        "ReconstructionDiameter": format_ds(grid.shape[2] * grid.spacing[2]),
        "DataCollectionDiameter": "500",
        "GantryDetectorTilt": "0",
    }
    return Phantom(
        kind=KIND,
        seed=seed,
        grid=grid,
        volume=hu,
        truth={"lung": lung_truth, "nodule": nodule_truth, "ggo": ggo_truth},
        clinical=clinical,
        demographics=demo,
        dicom=dicom,
    )


def _render(
    anat: ChestAnatomy,
    grid: Grid,
    labels: NDArray[np.uint8],
    wall: WallPixels,
    texture_rng: np.random.Generator,
    rng: np.random.Generator,
) -> tuple[NDArray[np.int16], NDArray[np.uint8]]:
    """Labels -> HU with lung texture, PSF blur and correlated noise; also the lung mask.

    The lung texture belongs to the anatomy (its own seed stream); the noise stream is
    keyed by the grid shape, so each grid gets fresh but reproducible noise."""
    hu = np.empty(grid.shape, np.int16)
    lung = np.empty(grid.shape, np.uint8)
    z_lo, z_hi = anat.z_range
    lo = (anat.xc - anat.a_body, anat.yc - anat.b_ant, z_lo - 10)
    hi = (anat.xc + anat.a_body, anat.yc + anat.b_post, z_hi + 10)
    texture = LatticeNoise(texture_rng, lo, hi, 14.0)
    sigma = np.float32(anat.noise_hu / BLUR_NOISE_GAIN)
    x, y, z = grid.x, grid.y, grid.z
    for sl in slabs(grid.shape[0], grid.shape[1] * grid.shape[2]):
        lab = labels[sl]
        lung[sl] = LUNG_LUT[lab]
        values = HU_LUT[lab]
        lung_term = wall.lung_gradient[None] + np.float32(12.0) * texture.on_grid(x, y, z[sl])
        values += TEXTURE_LUT[lab] * lung_term
        values += rng.standard_normal(values.shape, dtype=np.float32) * sigma
        values = blur_inplane(values)
        np.rint(values, out=values)
        np.clip(values, HU_MIN, HU_MAX, out=values)
        hu[sl] = values
    return hu, lung


def series_fields(phantom: Phantom) -> dict[str, Any]:
    """Kind-specific :class:`~.dicom_writer.SeriesInfo` fields."""
    thickness = phantom.grid.spacing[0]
    return {
        "modality": "CT",
        "sop_class_uid": CT_IMAGE_STORAGE,
        "study_description": "CT CHEST (SYNTHETIC PHANTOM)",
        "series_number": 2,
        "series_description": f"Axial {format_ds(thickness)}mm {phantom.dicom['ConvolutionKernel']}",
        "body_part": "CHEST",
        "patient_position": "HFS",
        "image_type": ("ORIGINAL", "PRIMARY", "AXIAL"),
        "bits_stored": 12,
        "windows": ((-600.0, 1500.0, "LUNG"), (40.0, 400.0, "MEDIASTINUM")),
        "rescale": (1.0, -1024.0),
        "extra": dict(phantom.dicom),
    }
