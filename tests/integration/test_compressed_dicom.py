"""DICOM as archives hold it, on the real server and Orthanc: series written by other software (pydicom's test
files) in JPEG 2000, JPEG-LS, RLE, big-endian and deflated transfer syntaxes decode to the same voxels as the
uncompressed original, and a model runs on them; irregular series get a 422 naming the reason, never a 500."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import Account, Cohorts, attach_to_cohort, client_for

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
ORIGINAL = "MR_small.dcm"  # explicit VR little endian, 64x64 int16
# The same image as other software stored it (pydicom's test data: GDCM, dcmtk and CharLS among the writers).
ENCODED = [
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_RLE.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
]


def _as_new_series(source: Path, study_uid: str, copies: int = 1) -> list[pydicom.Dataset]:
    """The file's instance stored as a series of its own (new series and instance UIDs; pixel data untouched);
    ``copies`` instances of it in the one series, each with its own SOP Instance UID."""
    series_uid = generate_uid()
    datasets = []
    for _ in range(copies):
        ds = pydicom.dcmread(source)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID, ds.PatientName = "COMPRESSED-01", "Compressed^Test"
        ds.PatientIdentityRemoved = "YES"  # test data: attached to a de-identifying cohort as it is
        datasets.append(ds)
    return datasets


def _stored(orthanc: OrthancClient, datasets: list[pydicom.Dataset]) -> str:
    orthanc.store(datasets)  # STOW-RS, each instance in its own transfer syntax
    return str(datasets[0].SeriesInstanceUID)


def _voxels(http, series_uid: str) -> tuple[np.ndarray, np.ndarray]:
    reply = http.get("/datastore/image", params={"image": series_uid})
    assert reply.status_code == 200, reply.text
    image = nib.Nifti1Image.from_bytes(gzip.decompress(reply.content))
    return np.asanyarray(image.dataobj), image.affine


@pytest.fixture(scope="module")
def series(server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient) -> dict[str, str]:
    study_uid = generate_uid()
    stored = {name: _stored(orthanc, _as_new_series(TEST_FILES / name, study_uid)) for name in [ORIGINAL, *ENCODED]}
    ct_study = generate_uid()
    stored["ct-twice"] = _stored(orthanc, _as_new_series(TEST_FILES / "CT_small.dcm", ct_study, copies=2))
    stored["ct-once"] = _stored(orthanc, _as_new_series(TEST_FILES / "CT_small.dcm", ct_study))
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[study_uid, ct_study])
    return stored


@pytest.mark.parametrize("name", ENCODED)
def test_a_series_in_any_transfer_syntax_decodes_to_the_originals_voxels(
    server_url: str, admin: Account, series: dict[str, str], name: str
) -> None:
    with client_for(server_url, admin) as http:
        expected, expected_affine = _voxels(http, series[ORIGINAL])
        decoded, affine = _voxels(http, series[name])
    assert decoded.dtype == expected.dtype and np.array_equal(decoded, expected)
    assert np.allclose(affine, expected_affine)
    reference = pydicom.dcmread(TEST_FILES / ORIGINAL).pixel_array  # (row, column)
    assert np.array_equal(decoded[:, :, 0].T, reference)


def test_a_2d_model_runs_on_a_jpeg_2000_series_of_one_slice_as_on_the_original(
    server_url: str, admin: Account, series: dict[str, str]
) -> None:
    masks = {}
    with client_for(server_url, admin) as http:
        for name in (ORIGINAL, "MR_small_jp2klossless.dcm"):
            reply = http.post("/infer/osteosarcoma_mr", params={"image": series[name], "output": "image"})
            assert reply.status_code == 200, reply.text
            masks[name] = np.asanyarray(nib.Nifti1Image.from_bytes(gzip.decompress(reply.content)).dataobj)
    assert masks[ORIGINAL].shape == (64, 64, 1)
    assert np.array_equal(masks[ORIGINAL], masks["MR_small_jp2klossless.dcm"])


def test_irregular_series_get_a_422_naming_the_reason(
    server_url: str, admin: Account, cohorts: Cohorts, series: dict[str, str]
) -> None:
    with client_for(server_url, cohorts.alpha_member) as member, client_for(server_url, admin) as root:
        twice = root.post("/infer/lung_volume_ct", params={"image": series["ct-twice"], "output": "json"})
        assert twice.status_code == 422 and "same position" in twice.json()["detail"], twice.text
        assert member.get("/datastore/image", params={"image": series["ct-twice"]}).status_code == 422
        once = root.post("/infer/lung_volume_ct", params={"image": series["ct-once"], "output": "json"})
        assert once.status_code == 422 and "windows of 16 slices; the series has 1" in once.json()["detail"]
