"""In-memory result of a phantom generator, before anything is written to disk."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .geometry import Grid

# Seeds from here up are reserved for evaluation (see the package docstring).
EVALUATION_SEED_START = 50000


@dataclass(frozen=True)
class PatientDemographics:
    """Synthetic DICOM patient / study description of one phantom."""

    name: str  # DICOM PN, e.g. "PHANTOM^CHEST^0001"
    patient_id: str  # e.g. "CT-0001"
    sex: str  # "M" or "F"
    age_years: int
    birth_date: str  # YYYYMMDD
    study_date: str  # YYYYMMDD
    study_time: str  # HHMMSS


@dataclass
class Phantom:
    """A synthesised patient: the image, its grid, truth masks and clinical data.

    ``volume`` holds modality values indexed ``[slice, row, col]``: Hounsfield units
    as int16 for CT, raw signal as uint16 for MR.  ``truth`` maps structure names to
    uint8 0/1 masks of the same shape.
    """

    kind: str
    seed: int
    grid: Grid
    volume: NDArray[np.int16] | NDArray[np.uint16]
    truth: dict[str, NDArray[np.uint8]]
    clinical: dict[str, Any]
    demographics: PatientDemographics
    dicom: dict[str, Any] = field(default_factory=dict)  # modality-specific DICOM attributes


def rng_for(kind: str, seed: int, stream: str) -> np.random.Generator:
    """Independent random stream per (kind, seed, purpose).

    Named streams keep anatomy, lesions and noise decoupled: drawing more noise (a
    bigger grid) never changes the anatomy of a seed.  ``crc32`` rather than ``hash``
    because Python's string hash is salted per process.
    """
    if seed < 0:
        raise ValueError("seed must be >= 0")
    key = [seed, zlib.crc32(kind.encode()), zlib.crc32(stream.encode())]
    return np.random.default_rng(np.random.SeedSequence(key))


def synthetic_demographics(
    rng: np.random.Generator, seed: int, name_tag: str, id_prefix: str, age_range: tuple[int, int]
) -> PatientDemographics:
    """Deterministic synthetic identity; the seed is visible in name and id."""
    sex = "F" if rng.random() < 0.45 else "M"
    age = int(rng.integers(age_range[0], age_range[1] + 1))
    # study dates spread over 2015..2024, times within working hours
    study = np.datetime64("2015-01-01") + np.timedelta64(int(rng.integers(0, 3650)), "D")
    birth = study - np.timedelta64(int(age * 365.25 + rng.integers(0, 365)), "D")
    hour, minute = int(rng.integers(7, 19)), int(rng.integers(0, 60))
    return PatientDemographics(
        name=f"PHANTOM^{name_tag}^{seed:04d}",
        patient_id=f"{id_prefix}-{seed:04d}",
        sex=sex,
        age_years=age,
        birth_date=str(birth).replace("-", ""),
        study_date=str(study).replace("-", ""),
        study_time=f"{hour:02d}{minute:02d}00",
    )


def clinical_header(kind: str, seed: int, demographics: PatientDemographics) -> dict[str, Any]:
    """The fields every patient's ``clinical.json`` starts with."""
    return {
        "kind": kind,
        "seed": seed,
        "patient_id": demographics.patient_id,
        "split": "evaluation" if seed >= EVALUATION_SEED_START else "development",
        "sex": demographics.sex,
        "age_years": demographics.age_years,
    }
