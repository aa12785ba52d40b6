"""Shared fixtures: one default-size patient per kind (generated once per session) and a DICOM reader."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest

from awesomme.phantoms import KINDS, Patient, Phantom, generate_patient, synthesize


@dataclass
class Series:
    """A DICOM series read back with pydicom, slices sorted by position."""

    datasets: list[pydicom.FileDataset]
    volume: np.ndarray  # modality values [k, j, i] (rescale applied when present)
    stored: np.ndarray  # raw stored pixel values
    affine_ras: np.ndarray


def read_series(dicom_dir: Path) -> Series:
    datasets = [pydicom.dcmread(p) for p in sorted(dicom_dir.glob("*.dcm"))]
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    stored = np.stack([ds.pixel_array for ds in datasets])
    first = datasets[0]
    slope = float(first.get("RescaleSlope", 1))
    intercept = float(first.get("RescaleIntercept", 0))
    volume = stored.astype(np.int32) * int(slope) + int(intercept) if "RescaleSlope" in first else stored

    # Standard DICOM -> NIfTI: columns of the LPS affine are the column/row/slice steps.
    iop = np.array([float(v) for v in first.ImageOrientationPatient])
    row_spacing, col_spacing = (float(v) for v in first.PixelSpacing)
    origin = np.array([float(v) for v in first.ImagePositionPatient])
    if len(datasets) > 1:
        step = np.array([float(v) for v in datasets[1].ImagePositionPatient]) - origin
    else:
        step = np.cross(iop[:3], iop[3:]) * float(first.SliceThickness)
    lps = np.eye(4)
    lps[:3, 0] = iop[:3] * col_spacing
    lps[:3, 1] = iop[3:] * row_spacing
    lps[:3, 2] = step
    lps[:3, 3] = origin
    affine_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    return Series(datasets, volume, stored, affine_ras)


@pytest.fixture(scope="session")
def default_patients(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Patient]:
    """One default-grid patient per kind (the only full-size ones in this suite)."""
    root = tmp_path_factory.mktemp("default")
    return {kind: generate_patient(kind, 7, root / kind) for kind in KINDS}


@pytest.fixture(scope="session")
def default_phantoms(default_patients: dict[str, Patient]) -> dict[str, Phantom]:
    """The in-memory twins of ``default_patients`` (same kind, seed and grid)."""
    return {kind: synthesize(kind, patient.seed) for kind, patient in default_patients.items()}
