"""generate_patient: files, determinism, DICOM validity and agreement between DICOM and NIfTI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

import awesomme.phantoms as phantoms
from awesomme.phantoms import (
    EVALUATION_SEED_START,
    KINDS,
    STRUCTURES,
    Patient,
    default_grid,
    generate_patient,
    synthesize,
)

from .conftest import read_series

SMALL = {"osteosarcoma-mr": (12, 96, 96), "chest-ct": (14, 128, 128)}
UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def test_public_api() -> None:
    assert KINDS == ("osteosarcoma-mr", "chest-ct")
    assert EVALUATION_SEED_START == 50000
    for name in ("generate_patient", "Patient", "KINDS", "EVALUATION_SEED_START"):
        assert name in phantoms.__all__
    # the reservation is documented where people look
    assert phantoms.__doc__ is not None and "50000" in phantoms.__doc__
    assert generate_patient.__doc__ is not None and "evaluation" in generate_patient.__doc__.lower()


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_patient("pet-ct", 1, tmp_path)
    with pytest.raises(ValueError):
        generate_patient("chest-ct", -1, tmp_path)
    with pytest.raises(ValueError):
        generate_patient("chest-ct", 1, tmp_path, shape=(0, 10, 10))


@pytest.mark.parametrize("kind", KINDS)
def test_writes_the_documented_layout(kind: str, tmp_path: Path) -> None:
    patient = generate_patient(kind, 3, tmp_path, shape=SMALL[kind])
    assert isinstance(patient, Patient)
    assert patient.kind == kind and patient.seed == 3 and patient.shape == SMALL[kind]
    assert len(patient.dicom_files) == SMALL[kind][0]
    assert sorted(p.name for p in (tmp_path / "dicom").iterdir()) == sorted(p.name for p in patient.dicom_files)
    assert set(patient.truth) == set(STRUCTURES[kind])
    for name, path in patient.truth.items():
        assert path == tmp_path / "truth" / f"{name}.nii.gz" and path.is_file()
    clinical_path = tmp_path / "truth" / "clinical.json"
    assert json.loads(clinical_path.read_text()) == patient.clinical
    assert patient.clinical["seed"] == 3 and patient.clinical["kind"] == kind
    prefix = {"osteosarcoma-mr": ("PHANTOM^OSTEO^0003", "OS-0003"), "chest-ct": ("PHANTOM^CHEST^0003", "CT-0003")}
    ds = read_series(tmp_path / "dicom").datasets[0]
    assert (str(ds.PatientName), ds.PatientID) == prefix[kind]
    assert patient.patient_id == prefix[kind][1]


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_gives_identical_files(kind: str, tmp_path: Path) -> None:
    first = generate_patient(kind, 11, tmp_path / "a", shape=SMALL[kind])
    second = generate_patient(kind, 11, tmp_path / "b", shape=SMALL[kind])
    assert (first.study_uid, first.series_uid, first.frame_of_reference_uid) == (
        second.study_uid,
        second.series_uid,
        second.frame_of_reference_uid,
    )
    assert first.clinical == second.clinical
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    for rel in files_a:  # byte-identical: pixels, UIDs, dates, gzip headers
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


@pytest.mark.parametrize("kind", KINDS)
def test_different_seeds_give_different_patients(kind: str) -> None:
    a, b = synthesize(kind, 1, SMALL[kind]), synthesize(kind, 2, SMALL[kind])
    assert not np.array_equal(a.volume, b.volume)
    first_structure = STRUCTURES[kind][0]
    assert not np.array_equal(a.truth[first_structure], b.truth[first_structure])
    assert a.demographics.patient_id != b.demographics.patient_id


def test_uids_depend_on_kind_seed_and_shape(tmp_path: Path) -> None:
    base = generate_patient("chest-ct", 5, tmp_path / "a", shape=(6, 64, 64))
    other_seed = generate_patient("chest-ct", 6, tmp_path / "b", shape=(6, 64, 64))
    other_shape = generate_patient("chest-ct", 5, tmp_path / "c", shape=(6, 64, 80))
    other_kind = generate_patient("osteosarcoma-mr", 5, tmp_path / "d", shape=(6, 64, 64))
    uids = {p.study_uid for p in (base, other_seed, other_shape, other_kind)}
    assert len(uids) == 4


@pytest.mark.parametrize("kind", KINDS)
def test_dicom_is_consistent(kind: str, tmp_path: Path) -> None:
    patient = generate_patient(kind, 4, tmp_path, shape=SMALL[kind])
    series = read_series(tmp_path / "dicom")
    sop_class = {"osteosarcoma-mr": "1.2.840.10008.5.1.4.1.1.4", "chest-ct": "1.2.840.10008.5.1.4.1.1.2"}[kind]
    instance_uids = set()
    for k, ds in enumerate(series.datasets):
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"  # explicit VR little endian
        assert ds.SOPClassUID == sop_class == ds.file_meta.MediaStorageSOPClassUID
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
        assert ds.StudyInstanceUID == patient.study_uid
        assert ds.SeriesInstanceUID == patient.series_uid
        assert ds.FrameOfReferenceUID == patient.frame_of_reference_uid
        assert ds.InstanceNumber == k + 1
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert float(ds.SpacingBetweenSlices) == float(ds.SliceThickness) == patient.spacing[0]
        assert [float(v) for v in ds.PixelSpacing] == [patient.spacing[1], patient.spacing[2]]
        assert ds.BitsAllocated == 16 and ds.PixelRepresentation == 0
        instance_uids.add(ds.SOPInstanceUID)
        for uid in (ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID):
            assert len(uid) <= 64 and UID_RE.match(uid)
    assert len(instance_uids) == len(series.datasets)
    z = [float(ds.ImagePositionPatient[2]) for ds in series.datasets]
    assert np.allclose(np.diff(z), patient.spacing[0], rtol=0, atol=0)
    ds = series.datasets[0]
    if kind == "chest-ct":
        assert (float(ds.RescaleIntercept), float(ds.RescaleSlope)) == (-1024.0, 1.0)
        assert ds.Modality == "CT"
    else:
        assert "RescaleIntercept" not in ds and ds.Modality == "MR"


@pytest.mark.parametrize("kind", KINDS)
def test_dicom_readback_matches_volume_and_truth_grid(kind: str, tmp_path: Path) -> None:
    shape = SMALL[kind]
    patient = generate_patient(kind, 9, tmp_path, shape=shape)
    phantom = synthesize(kind, 9, shape)
    series = read_series(tmp_path / "dicom")
    assert series.volume.shape == shape
    assert np.array_equal(series.volume, phantom.volume)  # bit-identical pixels
    for name, path in patient.truth.items():
        image = nib.load(path)
        assert isinstance(image, nib.Nifti1Image)
        assert image.get_data_dtype() == np.uint8
        assert np.array_equal(image.affine, series.affine_ras)  # identical, not just close
        assert np.array_equal(image.affine, patient.affine)
        data = np.asarray(image.dataobj)
        assert data.shape == (shape[2], shape[1], shape[0])  # NIfTI [i, j, k] of the DICOM [k, j, i]
        assert set(np.unique(data)) <= {0, 1}
        assert np.array_equal(data.transpose(2, 1, 0), phantom.truth[name])


def test_simpleitk_sees_one_grid(default_patients: dict[str, Patient]) -> None:
    """SimpleITK reads the DICOM series and the NIfTI masks onto the same physical grid."""
    for kind, patient in default_patients.items():
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(patient.dicom_files[0].parent)))
        dicom = reader.Execute()
        for path in patient.truth.values():
            mask = sitk.ReadImage(str(path))
            assert mask.GetSize() == dicom.GetSize(), kind
            assert np.allclose(mask.GetOrigin(), dicom.GetOrigin(), atol=1e-6)
            assert np.allclose(mask.GetSpacing(), dicom.GetSpacing(), atol=1e-6)
            assert np.allclose(mask.GetDirection(), dicom.GetDirection(), atol=1e-6)
        assert sitk.GetArrayFromImage(dicom).shape == patient.shape


@pytest.mark.parametrize("kind", KINDS)
def test_shape_override_is_honoured(kind: str, tmp_path: Path) -> None:
    shape = (10, 72, 88)
    patient = generate_patient(kind, 2, tmp_path, shape=shape)
    assert patient.shape == shape and len(patient.dicom_files) == 10
    ds = read_series(tmp_path / "dicom").datasets[0]
    assert (ds.Rows, ds.Columns) == (72, 88)
    for path in patient.truth.values():
        image = nib.load(path)
        assert isinstance(image, nib.Nifti1Image) and image.shape == (88, 72, 10)
    # same patient, same field of view: the override resamples the default grid
    default = default_grid(kind, 2)
    fov_default = default.shape[2] * default.spacing[2]
    fov_override = max(shape[1:]) * patient.spacing[2]
    assert abs(fov_default - fov_override) <= max(shape[1:]) / 128 + 1e-9
    assert all(v * 64 == int(v * 64) for v in (*patient.spacing, *patient.origin))  # exact in DS and float32


def test_existing_out_dir_keeps_foreign_files_and_drops_stale_slices(tmp_path: Path) -> None:
    (tmp_path / "dicom").mkdir()
    foreign = tmp_path / "dicom" / "IM9999.dcm"
    foreign.write_bytes(b"not ours")
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    generate_patient("chest-ct", 1, tmp_path, shape=(8, 64, 64))
    patient = generate_patient("chest-ct", 1, tmp_path, shape=(5, 64, 64))
    ours = sorted(p for p in (tmp_path / "dicom").glob("*.dcm") if p != foreign)
    assert ours == sorted(patient.dicom_files)
    assert len(ours) == 5
    assert foreign.read_bytes() == b"not ours" and notes.read_text() == "keep me"


def test_evaluation_seeds_are_labelled(tmp_path: Path) -> None:
    patient = generate_patient("osteosarcoma-mr", EVALUATION_SEED_START, tmp_path, shape=(6, 48, 48))
    assert patient.clinical["split"] == "evaluation"
    assert patient.patient_id == "OS-50000"
    assert synthesize("osteosarcoma-mr", EVALUATION_SEED_START - 1, (6, 48, 48)).clinical["split"] == "development"


def _dciodvfy(path: Path) -> str:
    binary = shutil.which("dciodvfy")
    # CI installs dicom3tools: a missing validator is a failure, not a skip
    assert binary is not None, "dciodvfy (Debian package dicom3tools) is required for this test"
    result = subprocess.run([binary, str(path)], capture_output=True, text=True, timeout=60, check=False)
    return result.stdout + result.stderr


def test_dciodvfy_reports_no_errors(default_patients: dict[str, Patient], tmp_path: Path) -> None:
    files = []
    for patient in default_patients.values():
        files += [patient.dicom_files[0], patient.dicom_files[-1]]
    for kind in KINDS:
        override = generate_patient(kind, 12, tmp_path / kind, shape=(4, 100, 120))
        files.append(override.dicom_files[1])
    for path in files:
        report = _dciodvfy(path)
        errors = [line for line in report.splitlines() if line.startswith("Error")]
        assert not errors, f"{path}:\n{report}"
        assert "Image" in report  # dciodvfy recognised the IOD (CTImage / MRImage)


@pytest.mark.parametrize("kind", KINDS)
def test_default_grid_ranges(kind: str, default_patients: dict[str, Patient]) -> None:
    patient = default_patients[kind]
    assert default_grid(kind, patient.seed).shape == patient.shape
    nz, ny, nx = patient.shape
    dz, dy, dx = patient.spacing
    if kind == "chest-ct":
        assert (ny, nx) == (512, 512) and 0.6 <= dx == dy <= 0.9
        assert 30 <= nz <= 120 and 1.25 <= dz <= 5
    else:
        assert (ny, nx) == (256, 256) and 0.6 <= dx == dy <= 0.8
        assert 16 <= nz <= 60 and 3.5 <= dz <= 4.5
