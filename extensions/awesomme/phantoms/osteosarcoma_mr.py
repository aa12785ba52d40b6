"""Synthetic knee MR with a distal femoral osteosarcoma (axial, T2-weighted-like).

Anatomy per seed, in LPS mm with the knee joint line at z = 0 (superior +z): the
limb outline, subcutaneous fat, muscle compartments separated by fat septa, the
distal femur (shaft -> flaring metaphysis -> physis -> condyles with intercondylar
notch; cortex dark, marrow bright-ish), tibia, fibular head, patella with tendons,
Hoffa's and popliteal fat, popliteal vessels (flow voids), cartilage, menisci and
joint fluid.  Relative signal follows a T2-weighted fast spin echo without fat
suppression: fluid > fat > marrow > cartilage > muscle >> tendon, cortex.

The tumour is an irregular blob (lobulated, with a rough margin) centred in the
metaphysis, so it fills the medulla, breaks through the cortex and grows into the
soft tissue.  It has a necrotic core (fluid-like, itself heterogeneous), a viable rim
with seed-dependent texture heterogeneity, dark mineralised osteoid foci and a
peritumoural oedema halo (not part of the truth).

Clinical response is linked to the texture: a latent chemo-sensitivity drives both
the necrosis fraction and the heterogeneity of the viable tumour (good responders
are more necrotic and more heterogeneous), with noise on each so that response is
learnable from radiomics but not trivially.

Truth masks: ``tumour`` (viable + necrotic + mineralised) and ``bone`` (all bone:
femur, tibia, fibula, patella, cortex and marrow, excluding voxels replaced by
tumour).  Noise is Rician (magnitude of complex Gaussian noise), on top of a smooth
coil-sensitivity bias field.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .dicom_writer import MR_IMAGE_STORAGE
from .geometry import Grid, Shape3, patient_grid, snap_mm
from .phantom import Phantom, clinical_header, rng_for, synthetic_demographics
from .shapes import BLUR_NOISE_GAIN, FourierField, LatticeNoise, blur_inplane, index_range, smoothstep

KIND = "osteosarcoma-mr"
STRUCTURES = ("tumour", "bone")
MAX_STORED = 4095  # 12-bit unsigned

Array = NDArray[np.float32]
Bool = NDArray[np.bool_]


class Tissue(IntEnum):
    AIR = 0
    SKIN = 1
    FAT = 2  # subcutaneous
    MUSCLE = 3
    SEPTUM = 4  # intermuscular fat
    CORTEX = 5
    MARROW = 6  # metaphyseal / diaphyseal (partly red in adolescents)
    EPIPHYSIS = 7  # fatty epiphyseal marrow
    PHYSIS = 8
    CARTILAGE = 9
    FLUID = 10
    TENDON = 11  # tendons and menisci: very dark
    ARTERY = 12  # flow void
    VEIN = 13
    DEEP_FAT = 14  # Hoffa's and popliteal fat
    TUMOUR = 15
    NECROSIS = 16
    MINERAL = 17  # mineralised osteoid


SIGNAL = {
    Tissue.AIR: 0.0, Tissue.SKIN: 0.45, Tissue.FAT: 1.0, Tissue.MUSCLE: 0.3, Tissue.SEPTUM: 0.95,
    Tissue.CORTEX: 0.04, Tissue.MARROW: 0.72, Tissue.EPIPHYSIS: 0.88, Tissue.PHYSIS: 0.6,
    Tissue.CARTILAGE: 0.55, Tissue.FLUID: 1.4, Tissue.TENDON: 0.06, Tissue.ARTERY: 0.05,
    Tissue.VEIN: 0.4, Tissue.DEEP_FAT: 1.0, Tissue.TUMOUR: 0.62, Tissue.NECROSIS: 1.2,
    Tissue.MINERAL: 0.12,
}  # fmt: skip
SIGNAL_LUT = np.zeros(256, np.float32)
for _t, _v in SIGNAL.items():
    SIGNAL_LUT[_t] = _v
BONE_LUT = np.zeros(256, np.uint8)
BONE_LUT[[Tissue.CORTEX, Tissue.MARROW, Tissue.EPIPHYSIS, Tissue.PHYSIS]] = 1
TUMOUR_LUT = np.zeros(256, np.uint8)
TUMOUR_LUT[[Tissue.TUMOUR, Tissue.NECROSIS, Tissue.MINERAL]] = 1
# the tumour may replace anything inside the deep fascia except the popliteal vessels
INVADABLE = np.ones(256, bool)
INVADABLE[[Tissue.AIR, Tissue.SKIN, Tissue.FAT, Tissue.ARTERY, Tissue.VEIN]] = False

SLICE_SPACINGS = (3.5, 4.0, 4.0, 4.5)


def _ellipse(x: Array, y: Array, cx: float, cy: float, rx: float, ry: float) -> Array:
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2


class KneeAnatomy:
    """Seed-level parameters of one knee (mm, LPS; joint line at z = 0)."""

    def __init__(self, rng: np.random.Generator) -> None:
        u = rng.uniform
        self.laterality = "R" if rng.random() < 0.5 else "L"
        # lateral side of a right knee points to the patient's right (-x in LPS)
        self.lateral = -1.0 if self.laterality == "R" else 1.0
        medial = -self.lateral

        # acquisition first: the limb must fit the field of view
        self.pixel = int(rng.integers(42, 49)) / 64.0  # 0.656 .. 0.75 mm
        self.fov = 256 * self.pixel
        self.slice_spacing = float(rng.choice(SLICE_SPACINGS))
        self.n_slices = int(rng.integers(16, 61))
        self.coverage = self.n_slices * self.slice_spacing

        self.limb_a = u(0.31, 0.37) * self.fov
        self.limb_b = self.limb_a * u(0.86, 0.98)
        self.limb_c = (u(-4, 4), u(-4, 4))
        self.fat = u(4, 13)
        self.fat_wiggle = [(rng.normal(0, 0.25 / h), h, u(0, 2 * np.pi)) for h in range(1, 5)]

        scale = self.limb_a / 60.0
        self.shaft_r = u(11, 13.5) * scale
        self.femur_c = (self.limb_c[0] + medial * u(2, 6), self.limb_c[1] - u(4, 10))
        self.cond_a = u(32, 38) * scale  # half width of the condyles
        self.cond_b = u(24, 29) * scale  # half depth
        self.z_physis = u(15, 24)
        self.flare = u(40, 60)
        self.physis_wave = (u(1.0, 2.5), u(0.05, 0.09), u(0, 2 * np.pi))
        fx, fy = self.femur_c
        self.tibia = (fx + u(-2, 2), fy + u(1, 4), self.cond_a * u(0.95, 1.05), self.cond_b * u(0.8, 0.9))
        self.tibia_shaft_r = u(11, 14) * scale
        self.z_tibial_physis = -u(14, 22)
        self.fibula = (fx + self.lateral * 0.82 * self.cond_a, fy + 0.55 * self.cond_b, u(7, 9.5) * scale)
        self.patella = (fx + u(-3, 3), fy - self.cond_b - u(10, 13), u(22, 38), u(18, 23), u(8, 10), u(16, 21))
        self.popliteal = (fx + self.lateral * u(0, 4), fy + self.cond_b + u(12, 18), u(17, 24), u(13, 19))
        self.artery = (self.popliteal[0] - self.lateral * 2, self.popliteal[1] - 4, u(3, 4))
        self.vein = (self.popliteal[0] + self.lateral * 5, self.popliteal[1] + 1, u(4, 6))
        self.septa = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 6))))
        self.septa_bend = rng.normal(0, 0.6, len(self.septa))  # radians per 50 mm: curved planes
        self.septa_reach = u(0.6, 1.1, len(self.septa)) * self.limb_a
        self.muscle_gain = u(0.9, 1.1, len(self.septa))
        self.effusion = rng.random() < 0.4

        # tumour: in the metaphysis, poking out of the bone towards a random side
        self.tumour_z = self.z_physis + u(4, 40)
        angle = u(0, 2 * np.pi)
        a, b = self.femur_axes(self.tumour_z)
        offset = u(0.35, 0.9)
        self.tumour_c = (fx + offset * a * np.cos(angle), fy + offset * b * np.sin(angle), self.tumour_z)
        size = u(14, 36)
        self.tumour_r = (size * u(0.85, 1.15), size * u(0.85, 1.15), min(size * u(1.1, 1.7), 0.5 * self.coverage + 10))
        self.lobes = FourierField(rng, wavelength_mm=u(2.0, 3.2), n_waves=12)  # on the unit sphere
        self.lobe_amp = u(0.12, 0.25)
        self.margin = FourierField(rng, wavelength_mm=u(8, 14), n_waves=16)
        self.margin_amp = u(0.05, 0.13)
        self.necrosis_shape = FourierField(rng, wavelength_mm=u(10, 18), n_waves=16)
        self.texture = FourierField(rng, wavelength_mm=u(4, 7), n_waves=24)
        self.texture_fine = FourierField(rng, wavelength_mm=u(2.5, 4), n_waves=24)
        self.mineral = FourierField(rng, wavelength_mm=u(6, 10), n_waves=16)
        self.mineral_fraction = u(0.01, 0.06)

        # response: latent chemo-sensitivity -> necrosis and heterogeneity (+ noise)
        latent = rng.normal()
        self.good_response = bool(latent + rng.normal(0, 0.7) > 0.15)
        self.necrosis_target = float(np.clip(0.42 + 0.17 * latent + rng.normal(0, 0.08), 0.05, 0.92))
        self.heterogeneity = float(np.clip(0.22 + 0.07 * latent + rng.normal(0, 0.04), 0.05, 0.5))

        # coverage: around the tumour, not too far below the joint
        z_mid = self.tumour_z + u(-0.2, 0.2) * self.coverage
        z_mid = max(z_mid, 0.5 * self.coverage - 40.0)
        self.z_first = snap_mm(z_mid - 0.5 * (self.n_slices - 1) * self.slice_spacing)

        # acquisition / display
        self.fat_signal = u(1100, 1600)
        self.noise = u(0.012, 0.035)
        self.bias_amp = u(0.04, 0.1)

    # ------------------------------------------------------------------ geometry
    def grid(self, shape: Shape3 | None) -> Grid:
        default = ((self.n_slices, 256, 256), (self.slice_spacing, self.pixel, self.pixel))
        return patient_grid(shape, default, self.fov, self.coverage, self.z_first, self.n_slices, self.slice_spacing)

    def femur_axes(self, z: float) -> tuple[float, float]:
        """Semi-axes (LR, AP) of the femur's outline at height z (metaphyseal flare)."""
        t = float(np.clip((z - self.z_physis) / self.flare, 0.0, 1.0))
        w = (1.0 - t) ** 2
        return self.shaft_r + (self.cond_a - self.shaft_r) * w, self.shaft_r + (self.cond_b - self.shaft_r) * w

    def cortex(self, z: float) -> float:
        return float(1.3 + 3.5 * smoothstep(self.z_physis, self.z_physis + self.flare, z))

    def slice_labels(self, x: Array, y: Array, z: float) -> tuple[NDArray[np.uint8], Array]:
        """Labels of one axial slice and a muscle gain map (compartments differ slightly)."""
        lab = np.zeros(np.broadcast_shapes(x.shape, y.shape), np.uint8)
        cx, cy = self.limb_c
        grow = 1.0 + 0.0012 * np.clip(z, -80, 120)
        theta = np.arctan2(y - cy, x - cx)
        r = np.hypot(x - cx, y - cy)
        r_limb = 1.0 / np.sqrt(
            (np.cos(theta) / (self.limb_a * grow)) ** 2 + (np.sin(theta) / (self.limb_b * grow)) ** 2
        )
        fat = self.fat * (1.0 + sum(a * np.cos(h * theta + p) for a, h, p in self.fat_wiggle))
        depth = r_limb - r
        lab[depth > 0] = Tissue.SKIN
        lab[depth > 1.2] = Tissue.FAT
        lab[depth > fat] = Tissue.MUSCLE

        fx, fy = self.femur_c
        gain = np.ones(lab.shape, np.float32)
        # fascial septa radiating from the femur split the muscle into compartments
        phi = np.mod(np.arctan2(y - fy, x - fx), 2 * np.pi)
        rf = np.hypot(x - fx, y - fy)
        sector = np.searchsorted(self.septa, phi) % len(self.septa)
        gain *= self.muscle_gain[sector].astype(np.float32)
        for angle, bend, reach in zip(self.septa, self.septa_bend, self.septa_reach, strict=True):
            local = phi - (angle + bend * (rf - self.shaft_r) / 50.0)
            off = np.abs(np.sin(local)) * rf
            septum = (off < 0.6) & (np.cos(local) > 0) & (rf > self.shaft_r + 4) & (rf < reach)
            lab[septum & (lab == Tissue.MUSCLE)] = Tissue.SEPTUM

        # popliteal fossa fat and vessels (behind the knee)
        px, py, prx, pry = self.popliteal
        fossa_scale = float(smoothstep(75, 35, z) * smoothstep(-40, -15, z))
        if fossa_scale > 0.05:
            fossa = _ellipse(x, y, px, py, prx * fossa_scale, pry * fossa_scale) < 1
            lab[fossa & (lab == Tissue.MUSCLE) | fossa & (lab == Tissue.SEPTUM)] = Tissue.DEEP_FAT
        for (vx, vy, vr), tissue in ((self.artery, Tissue.ARTERY), (self.vein, Tissue.VEIN)):
            lab[np.hypot(x - vx, y - vy) < vr] = tissue

        self._paint_bones(lab, x, y, z)
        return lab, gain

    def _paint_bones(self, lab: NDArray[np.uint8], x: Array, y: Array, z: float) -> None:
        fx, fy = self.femur_c
        # Hoffa's fat pad and patellar / quadriceps tendons in front of the joint
        pax, pay, paz, parx, pary, parz = self.patella
        if -5 < z < 18:
            lab[_ellipse(x, y, fx, fy - self.cond_b + 2, 20, 11) + ((z - 5) / 13) ** 2 < 1] = Tissue.DEEP_FAT
        if z > paz + parz - 4:
            lab[_ellipse(x, y, pax, pay - 2, 15, 3.5) < 1] = Tissue.TENDON
        elif -40 < z < paz - parz + 4:
            lab[_ellipse(x, y, pax, pay + 2 - 0.1 * (paz - z), 12, 3.5) < 1] = Tissue.TENDON

        # effusion: suprapatellar recess in front of the distal femur
        if self.effusion and self.z_physis - 5 < z < self.z_physis + 50:
            a, b = self.femur_axes(z)
            recess = (_ellipse(x, y, fx, fy - 3, a + 4, b + 4) < 1) & (y < fy - 0.55 * b)
            lab[recess & ((lab == Tissue.MUSCLE) | (lab == Tissue.SEPTUM) | (lab == Tissue.DEEP_FAT))] = Tissue.FLUID

        # patella: ellipsoid with thin cortex
        level = _ellipse(x, y, pax, pay, parx, pary) + ((z - paz) / parz) ** 2
        if (level < 1).any():
            inner = _ellipse(x, y, pax, pay, parx - 1.2, pary - 1.2) + ((z - paz) / (parz - 1.2)) ** 2
            lab[level < 1] = Tissue.CORTEX
            lab[inner < 1] = Tissue.EPIPHYSIS

        if z >= -1.0:
            self._paint_femur(lab, x, y, z)
        if z <= 0.5:
            self._paint_tibia(lab, x, y, z)

    def _paint_femur(self, lab: NDArray[np.uint8], x: Array, y: Array, z: float) -> None:
        fx, fy = self.femur_c
        a, b = self.femur_axes(z)
        t = self.cortex(z)
        if z < self.z_physis:
            # condyles: rounded towards the joint line, split posteriorly by the notch
            shrink = float(np.sqrt(np.clip((z + 1.0) / 9.0, 0.05, 1.0)))
            a, b = a * (0.75 + 0.25 * shrink), b * shrink
        outer = _ellipse(x, y, fx, fy, a, b)
        inner = _ellipse(x, y, fx, fy, max(a - t, 1.0), max(b - t, 1.0))
        notch = np.zeros(outer.shape, bool)
        if z < self.z_physis - 3:
            notch = _ellipse(x, y, fx, fy + b, 0.27 * self.cond_a, 0.8 * b) < 1
        if z < self.z_physis + 5:
            cartilage = (_ellipse(x, y, fx, fy, a + 2.5, b + 2.5) < 1) & ((y > fy + 0.2 * b) | (z < 6)) & ~notch
            lab[cartilage & (lab != Tissue.TENDON)] = Tissue.CARTILAGE
            if z < 1.0:  # joint space
                lab[_ellipse(x, y, fx, fy, a + 4, b + 4) < 1] = Tissue.FLUID
        bone = (outer < 1) & ~notch
        lab[bone] = Tissue.CORTEX
        marrow = (inner < 1) & ~notch
        if z < self.z_physis:
            rim = notch | ~(inner < 1)
            lab[bone & ~rim] = Tissue.EPIPHYSIS
        else:
            lab[marrow] = Tissue.MARROW
        # physis: a wavy cartilage plate across the bone
        amp, freq, phase = self.physis_wave
        height = self.z_physis + amp * np.sin(freq * (x - fx) + phase) + 0.5 * amp * np.cos(freq * (y - fy))
        lab[bone & (np.abs(z - height) < 1.0) & (inner < 1)] = Tissue.PHYSIS

    def _paint_tibia(self, lab: NDArray[np.uint8], x: Array, y: Array, z: float) -> None:
        tx, ty, ta, tb = self.tibia
        taper = float(smoothstep(-2, -70, z))
        a = ta + (self.tibia_shaft_r - ta) * taper
        b = tb + (self.tibia_shaft_r - tb) * taper
        if z > -3.0:
            # tibial cartilage and menisci at the joint line
            plateau = _ellipse(x, y, tx, ty, a, b)
            lab[plateau < 1] = Tissue.CARTILAGE
            # menisci: C-shaped rims, open between the anterior and posterior horns
            horns = np.abs(x - tx) < 0.22 * a
            lab[(plateau < 1) & (plateau > 0.72) & ~horns] = Tissue.TENDON
            return
        t = 1.2 + 2.5 * taper
        outer = _ellipse(x, y, tx, ty, a, b)
        inner = _ellipse(x, y, tx, ty, a - t, b - t)
        lab[outer < 1] = Tissue.CORTEX
        lab[inner < 1] = Tissue.EPIPHYSIS if z > self.z_tibial_physis else Tissue.MARROW
        lab[(inner < 1) & (np.abs(z - self.z_tibial_physis) < 1.0)] = Tissue.PHYSIS
        # fibular head
        bx, by, br = self.fibula
        if -70 < z < -12:
            level = np.hypot(x - bx, y - by) / (br * float(np.sqrt(np.clip((-12 - z) / 10, 0.2, 1))))
            lab[level < 1] = Tissue.CORTEX
            lab[level < 0.8] = Tissue.EPIPHYSIS


# ---------------------------------------------------------------------- tumour
@dataclass
class TumourPaint:
    box: tuple[slice, slice, slice]
    signal: Array  # relative signal inside the box (valid where tumour)
    oedema: Array  # multiplicative factor for the halo (1 elsewhere)
    necrosis_fraction: float


def _paint_tumour(anat: KneeAnatomy, grid: Grid, labels: NDArray[np.uint8]) -> TumourPaint | None:
    c = np.array(anat.tumour_c)
    radii = np.array(anat.tumour_r)
    reach = radii * (1 + anat.lobe_amp + anat.margin_amp) * 1.35 + 2.0
    i0, i1 = index_range(grid.x, c[0] - reach[0], c[0] + reach[0])
    j0, j1 = index_range(grid.y, c[1] - reach[1], c[1] + reach[1])
    k0, k1 = index_range(grid.z, max(c[2] - reach[2], 1.0), c[2] + reach[2])
    if i1 <= i0 or j1 <= j0 or k1 <= k0:
        return None
    box = (slice(k0, k1), slice(j0, j1), slice(i0, i1))
    x = grid.x[i0:i1].astype(np.float32)[None, None, :]
    y = grid.y[j0:j1].astype(np.float32)[None, :, None]
    z = grid.z[k0:k1].astype(np.float32)[:, None, None]
    dx, dy, dz = x - c[0], y - c[1], z - c[2]
    ex, ey, ez = dx / radii[0], dy / radii[1], dz / radii[2]
    rho = np.sqrt(ex * ex + ey * ey + ez * ez)
    unit = np.maximum(rho, np.float32(1e-6))
    shape = 1 + anat.lobe_amp * anat.lobes(ex / unit, ey / unit, ez / unit) + anat.margin_amp * anat.margin(x, y, z)
    level = rho / shape
    sub = labels[box]
    inside = (level < 1) & INVADABLE[sub]
    oedema = np.ones(level.shape, np.float32)
    halo = (level >= 1) & (level < 1.3) & np.isin(sub, [Tissue.MUSCLE, Tissue.MARROW, Tissue.EPIPHYSIS])
    oedema[halo] = 1.0 + 0.6 * (1.3 - level[halo]) / 0.3

    n_inside = int(inside.sum())
    if n_inside == 0:
        return TumourPaint(box, np.zeros(level.shape, np.float32), oedema, 0.0)
    # necrotic core: the most central part (irregular) with exactly the target volume fraction
    score = level + 0.12 * anat.necrosis_shape(x, y, z)
    threshold = np.quantile(score[inside], anat.necrosis_target)
    necrotic = inside & (score <= threshold)
    het = np.float32(anat.heterogeneity)
    texture = 0.7 * anat.texture(x, y, z) + 0.5 * anat.texture_fine(x, y, z)
    viable_signal = SIGNAL[Tissue.TUMOUR] * (1 + het * texture)
    necrotic_signal = SIGNAL[Tissue.NECROSIS] * (1 + 0.5 * het * texture)
    mineral_score = anat.mineral(x, y, z)
    viable = inside & ~necrotic
    mineral = np.zeros_like(viable)
    if viable.any():
        mineral = viable & (mineral_score >= np.quantile(mineral_score[viable], 1 - anat.mineral_fraction))
    sub[viable] = Tissue.TUMOUR
    sub[necrotic] = Tissue.NECROSIS
    sub[mineral] = Tissue.MINERAL
    signal = np.where(necrotic, necrotic_signal, viable_signal).astype(np.float32)
    signal[mineral] = SIGNAL[Tissue.MINERAL]
    return TumourPaint(box, signal, oedema, float(necrotic.sum()) / n_inside)


# ---------------------------------------------------------------------- entry point
def synthesize(seed: int, shape: Shape3 | None = None) -> Phantom:
    """Build one knee MR phantom in memory (see the module docstring)."""
    anat = KneeAnatomy(rng_for(KIND, seed, "anatomy"))
    grid = anat.grid(shape)
    x = grid.x.astype(np.float32)[None, :]
    y = grid.y.astype(np.float32)[:, None]
    labels = np.empty(grid.shape, np.uint8)
    signal = np.empty(grid.shape, np.float32)
    for k, z in enumerate(grid.z):
        lab, gain = anat.slice_labels(x, y, float(z))
        labels[k] = lab
        signal[k] = SIGNAL_LUT[lab] * np.where(lab == Tissue.MUSCLE, gain, np.float32(1))

    tumour = _paint_tumour(anat, grid, labels)
    necrosis_fraction = 0.0
    if tumour is not None:
        box_labels = labels[tumour.box]
        in_tumour = TUMOUR_LUT[box_labels].astype(bool)
        box_signal = signal[tumour.box]
        box_signal[in_tumour] = tumour.signal[in_tumour]
        box_signal *= tumour.oedema
        necrosis_fraction = tumour.necrosis_fraction

    stored = _acquire(anat, grid, signal, rng_for(KIND, seed, "bias"), rng_for(KIND, seed, f"noise/{grid.shape}"))
    tumour_mask = TUMOUR_LUT[labels]
    bone_mask = BONE_LUT[labels]
    demo = synthetic_demographics(rng_for(KIND, seed, "patient"), seed, "OSTEO", "OS", (9, 24))
    clinical: dict[str, Any] = {
        **clinical_header(KIND, seed, demo),
        "site": "distal femur",
        "laterality": anat.laterality,
        "response": "good" if anat.good_response else "poor",
        "necrosis_fraction": necrosis_fraction,
        "heterogeneity": anat.heterogeneity,
        "tumour_volume_ml": float(tumour_mask.sum()) * grid.voxel_volume_mm3 / 1000.0,
        "tumour_centre_mm": list(anat.tumour_c),
        "notes": {
            "necrosis_fraction": "necrotic / all tumour voxels on this grid",
            "heterogeneity": "relative amplitude of the viable tumour's texture",
            "response": "histological-style chemotherapy response; linked to necrosis and heterogeneity",
            "tumour": "viable + necrotic + mineralised tumour",
            "bone": "femur, tibia, fibula, patella (cortex + marrow), minus tumour",
        },
    }
    dicom = {
        "ScanningSequence": "SE",
        "SequenceVariant": "SK",
        "ScanOptions": "",
        "MRAcquisitionType": "2D",
        "SequenceName": "tse2d1_14",
        "RepetitionTime": "3600",
        "EchoTime": "85",
        "EchoTrainLength": 14,
        "NumberOfAverages": "2",
        "ImagingFrequency": "63.677",
        "ImagedNucleus": "1H",
        "MagneticFieldStrength": "1.5",
        "FlipAngle": "150",
        "PixelBandwidth": "190",
        "ReceiveCoilName": "KNEE",
        "InPlanePhaseEncodingDirection": "ROW",
        "Laterality": anat.laterality,
    }
    return Phantom(
        kind=KIND,
        seed=seed,
        grid=grid,
        volume=stored,
        truth={"tumour": tumour_mask, "bone": bone_mask},
        clinical=clinical,
        demographics=demo,
        dicom=dicom,
    )


def _acquire(
    anat: KneeAnatomy, grid: Grid, signal: Array, bias_rng: np.random.Generator, noise_rng: np.random.Generator
) -> NDArray[np.uint16]:
    """Bias field, PSF blur, Rician noise and 12-bit quantisation (slice by slice)."""
    cx, cy = anat.limb_c
    half = 0.5 * anat.fov
    z_lo, z_hi = anat.z_first - 10, anat.z_first + anat.coverage + 10
    bias_field = LatticeNoise(bias_rng, (-half, -half, z_lo), (half, half, z_hi), 70.0)
    x = grid.x.astype(np.float32)
    y = grid.y.astype(np.float32)
    # surface coil: brighter towards the skin
    coil = 1.0 + 0.12 * (((x[None, :] - cx) / anat.limb_a) ** 2 + ((y[:, None] - cy) / anat.limb_b) ** 2)
    scale = np.float32(anat.fat_signal)
    sigma = np.float32(anat.noise * anat.fat_signal / np.sqrt(BLUR_NOISE_GAIN))
    out = np.empty(grid.shape, np.uint16)
    for k, z in enumerate(grid.z.astype(np.float32)):
        bias = 1.0 + anat.bias_amp * bias_field.on_grid(x, y, np.array([z]))[0]
        s = blur_inplane(signal[k] * (bias * coil).astype(np.float32) * scale)
        real = s + sigma * noise_rng.standard_normal(s.shape, dtype=np.float32)
        imag = sigma * noise_rng.standard_normal(s.shape, dtype=np.float32)
        magnitude = np.sqrt(real * real + imag * imag)
        out[k] = np.clip(np.rint(magnitude), 0, MAX_STORED).astype(np.uint16)
    return out


def series_fields(phantom: Phantom) -> dict[str, Any]:
    """Kind-specific :class:`~.dicom_writer.SeriesInfo` fields."""
    fat = float(np.percentile(phantom.volume[:, ::4, ::4], 98)) if phantom.volume.size else 1000.0
    return {
        "modality": "MR",
        "sop_class_uid": MR_IMAGE_STORAGE,
        "study_description": "MR KNEE (SYNTHETIC PHANTOM)",
        "series_number": 3,
        "series_description": "T2 TSE AX",
        "body_part": "KNEE",
        "patient_position": "FFS",
        "image_type": ("ORIGINAL", "PRIMARY", "OTHER"),
        "bits_stored": 12,
        "windows": ((float(round(0.5 * fat)), float(max(round(fat), 2)), "AUTO"),),
        "rescale": None,
        "extra": dict(phantom.dicom),
    }
