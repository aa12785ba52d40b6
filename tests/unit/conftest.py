"""Small phantom series read back with pydicom, shared by the tests of volumes and SEGs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from awesomme.phantoms import Patient, generate_patient


@dataclass(frozen=True)
class SmallSeries:
    patient: Patient
    datasets: list[pydicom.Dataset]

    def truth_label_map(self) -> np.ndarray:
        """tumour = 1, bone = 2, on the (slice, row, column) grid."""
        tumour = np.asanyarray(nib.load(str(self.patient.truth["tumour"])).dataobj).transpose(2, 1, 0)
        bone = np.asanyarray(nib.load(str(self.patient.truth["bone"])).dataobj).transpose(2, 1, 0)
        label_map = np.zeros(tumour.shape, np.uint16)
        label_map[bone > 0] = 2
        label_map[tumour > 0] = 1
        return label_map


def _small(kind: str, out: Path) -> SmallSeries:
    patient = generate_patient(kind, 11, out, shape=(12, 64, 64))
    return SmallSeries(patient, [pydicom.dcmread(p) for p in patient.dicom_files])


@pytest.fixture(scope="session")
def small_mr(tmp_path_factory: pytest.TempPathFactory) -> SmallSeries:
    return _small("osteosarcoma-mr", tmp_path_factory.mktemp("small-mr"))


@pytest.fixture(scope="session")
def small_ct(tmp_path_factory: pytest.TempPathFactory) -> SmallSeries:
    return _small("chest-ct", tmp_path_factory.mktemp("small-ct"))
