"""Deterministic synthetic patients (no real patient data anywhere).

``generate_patient(kind, seed, out_dir)`` writes one patient::

    out_dir/dicom/IM0001.dcm ...         one file per slice, a valid CT / MR Image Storage series
    out_dir/truth/<structure>.nii.gz     uint8 0/1 masks on exactly the DICOM voxel grid
    out_dir/truth/clinical.json          clinical / lesion data

Kinds:

* ``"osteosarcoma-mr"``: T2-weighted-like axial knee MR (distal femur osteosarcoma);
  truth ``tumour`` (necrotic core included) and ``bone`` (all bone not replaced by
  tumour); clinical response linked to necrosis fraction and texture heterogeneity.
* ``"chest-ct"``: chest CT in HU; truth ``lung`` (lung cavity incl. vessels, airways
  and lesions inside it), ``nodule`` (solid and part-solid) and ``ggo`` (ground-glass
  areas and pure ground-glass nodules); clinical lists every nodule.

Everything is a pure function of ``(kind, seed, shape)``: pixels, masks, UIDs, dates
and file bytes are identical on every run, so re-seeding reproduces a patient.  A
``shape`` (slices, rows, cols) resamples the same patient (same field of view and
z-range) on another grid.

**Seeds from ``EVALUATION_SEED_START`` (50000) up are reserved for evaluation.** Nothing
may train, tune or select models on them; use seeds below 50000 for development.

Grid conventions (see :mod:`awesomme.phantoms.geometry`): DICOM LPS, axial slices
with identity orientation; the NIfTI affine is the DICOM geometry in RAS
(``diag(-1, -1, 1) @ LPS``) and NIfTI data are ``[col, row, slice]``, so nibabel and a
DICOM reader address the same voxel.  Spacings and positions are multiples of 1/64 mm
so both file formats store them exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import chest_ct, osteosarcoma_mr
from .dicom_writer import SeriesInfo, deterministic_uid, write_series
from .geometry import Grid, Shape3
from .phantom import EVALUATION_SEED_START, Phantom, rng_for
from .truth_writer import normalise_clinical, write_clinical, write_mask

__all__ = [
    "EVALUATION_SEED_START",
    "KINDS",
    "STRUCTURES",
    "Grid",
    "Patient",
    "Phantom",
    "default_grid",
    "generate_patient",
    "synthesize",
]

KINDS = ("osteosarcoma-mr", "chest-ct")
STRUCTURES: dict[str, tuple[str, ...]] = {
    "osteosarcoma-mr": osteosarcoma_mr.STRUCTURES,
    "chest-ct": chest_ct.STRUCTURES,
}
_SYNTHESIZERS: dict[str, Callable[[int, Shape3 | None], Phantom]] = {
    "osteosarcoma-mr": osteosarcoma_mr.synthesize,
    "chest-ct": chest_ct.synthesize,
}
_SERIES_FIELDS: dict[str, Callable[[Phantom], dict[str, Any]]] = {
    "osteosarcoma-mr": osteosarcoma_mr.series_fields,
    "chest-ct": chest_ct.series_fields,
}


@dataclass(frozen=True)
class Patient:
    """What :func:`generate_patient` wrote.

    ``shape`` is (slices, rows, cols) and ``spacing`` (slice, row, col) in mm;
    ``origin`` is the LPS position of the first voxel.  ``truth`` maps every structure
    of the kind to its mask file; ``clinical`` equals the content of ``clinical.json``.
    """

    kind: str
    seed: int
    patient_id: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    dicom_files: list[Path]
    truth: dict[str, Path]
    clinical: dict[str, Any]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    clinical_path: Path | None = None

    @property
    def affine(self) -> NDArray[np.float64]:
        """The NIfTI (RAS) affine of the truth masks."""
        dz, dy, dx = self.spacing
        a = np.diag([-dx, -dy, dz, 1.0])
        a[:3, 3] = (-self.origin[0], -self.origin[1], self.origin[2])
        return a


def _check(kind: str, seed: int, shape: Shape3 | None) -> Shape3 | None:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if shape is None:
        return None
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be (slices, rows, cols), got {shape!r}")
    return int(shape[0]), int(shape[1]), int(shape[2])


def synthesize(kind: str, seed: int, shape: tuple[int, int, int] | None = None) -> Phantom:
    """Build a patient in memory (image, masks, clinical data) without writing anything."""
    checked = _check(kind, seed, shape)
    return _SYNTHESIZERS[kind](int(seed), checked)


def default_grid(kind: str, seed: int) -> Grid:
    """The grid ``generate_patient(kind, seed, out_dir)`` would use, without building the image."""
    _check(kind, seed, None)
    if kind == "chest-ct":
        return chest_ct.ChestAnatomy(rng_for(kind, int(seed), "anatomy")).grid(None)
    return osteosarcoma_mr.KneeAnatomy(rng_for(kind, int(seed), "anatomy")).grid(None)


def generate_patient(kind: str, seed: int, out_dir: Path, shape: tuple[int, int, int] | None = None) -> Patient:
    """Write patient ``seed`` of ``kind`` to ``out_dir`` (see the module docstring).

    ``out_dir`` may exist: our files are overwritten (stale slices of an earlier run
    removed), anything else is left alone.  Seeds >= ``EVALUATION_SEED_START`` are
    evaluation-only.
    """
    phantom = synthesize(kind, seed, shape)
    out_dir = Path(out_dir)
    dicom_dir = out_dir / "dicom"
    truth_dir = out_dir / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)

    grid = phantom.grid
    uid_key = ("awesomme-phantom", kind, int(seed), grid.shape)
    study_uid = deterministic_uid(*uid_key, "study")
    series_uid = deterministic_uid(*uid_key, "series")
    frame_uid = deterministic_uid(*uid_key, "frame-of-reference")
    instance_uids = [deterministic_uid(*uid_key, "instance", k) for k in range(grid.shape[0])]
    demo = phantom.demographics
    info = SeriesInfo(
        patient_name=demo.name,
        patient_id=demo.patient_id,
        patient_birth_date=demo.birth_date,
        patient_sex=demo.sex,
        patient_age=f"{demo.age_years:03d}Y",
        study_uid=study_uid,
        series_uid=series_uid,
        frame_of_reference_uid=frame_uid,
        study_date=demo.study_date,
        study_time=demo.study_time,
        study_id=f"{seed % 100000:05d}",
        accession_number=f"ACC{seed:06d}",
        **_SERIES_FIELDS[kind](phantom),
    )
    # CT: stored = HU + 1024 (RescaleIntercept -1024); MR: stored as is
    stored_offset = 1024 if kind == "chest-ct" else 0

    # Mask compression (zlib releases the GIL) overlaps with writing the DICOM files.
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(write_mask, mask, grid, truth_dir / f"{name}.nii.gz")
            for name, mask in phantom.truth.items()
        }
        dicom_files = write_series(phantom.volume, grid, info, instance_uids, dicom_dir, stored_offset)
        truth = {name: future.result() for name, future in futures.items()}
    clinical_path = write_clinical(phantom.clinical, truth_dir / "clinical.json")
    return Patient(
        kind=kind,
        seed=int(seed),
        patient_id=demo.patient_id,
        study_uid=str(study_uid),
        series_uid=str(series_uid),
        frame_of_reference_uid=str(frame_uid),
        shape=grid.shape,
        spacing=grid.spacing,
        dicom_files=dicom_files,
        truth=truth,
        clinical=normalise_clinical(phantom.clinical),
        origin=grid.origin,
        clinical_path=clinical_path,
    )
