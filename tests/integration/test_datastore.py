"""The datastore on a real Orthanc, through the real server and MONAI Label's own Python client."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import nibabel as nib
import numpy as np
import pydicom
from dicomweb_client.api import DICOMwebClient
from sqlalchemy import func, select

from awesomme.core.config import Settings
from awesomme.core.db import engine_for
from awesomme.dicom.volumes import affine_from_datasets, sort_by_position, volume_from_datasets
from awesomme.models import Segmentation
from awesomme.orthanc.client import OrthancClient
from awesomme.phantoms import generate_patient
from awesomme.seeding import seed_demo
from tests.dicom_checks import dciodvfy_errors
from tests.integration.conftest import (
    CACHE_MAX_BYTES,
    UPLOAD_MAX_BYTES,
    Account,
    StoredPatient,
    leftovers,
    monailabel_client,
    store_patient,
)


def _objects(http: httpx.Client) -> dict:
    return http.get("/datastore/", params={"output": "all"}).json()["objects"]


def _seg_count(orthanc: OrthancClient) -> int:
    return len(orthanc.find_series(("SEG",)))


def _label_rows(platform: Settings) -> int:
    with engine_for(platform.db_url).connect() as connection:
        return int(connection.execute(select(func.count()).select_from(Segmentation)).scalar_one())


def test_seeded_series_read_back_bit_identical_with_their_geometry(
    platform: Settings, orthanc: OrthancClient, server_url: str, http: httpx.Client
) -> None:
    demo = seed_demo(platform, orthanc, patients=(("osteosarcoma-mr", 1), ("chest-ct", 1), ("chest-ct", 5)))
    assert [s.kind for s in demo] == ["osteosarcoma-mr", "chest-ct", "chest-ct"]
    # The first demo patients come labelled with their truth (so /train works out of the box), later ones not.
    objects = _objects(http)
    assert set(objects[demo[0].series_uid]["labels"]) == {"final"}
    assert objects[demo[0].series_uid]["labels"]["final"]["info"]["author"] == "PHANTOM^TRUTH"
    assert set(objects[demo[1].series_uid]["labels"]) == {"final"}
    assert objects[demo[2].series_uid]["labels"] == {}
    demo = demo[:2]
    # Seeding again stores nothing new.
    count = orthanc.statistics()["CountInstances"]
    assert seed_demo(platform, orthanc, patients=(("osteosarcoma-mr", 1), ("chest-ct", 1))) == demo
    assert len(http.get("/api/segmentations", params={"series_uid": demo[0].series_uid}).json()) == 1
    assert orthanc.statistics()["CountInstances"] == count

    # What a viewer or script sees, logged in.
    viewer = DICOMwebClient(url=server_url + "/dicom-web", headers={"Authorization": http.headers["authorization"]})
    for series in demo:
        original = generate_patient(series.kind, series.seed, Path(platform.var_dir) / "check" / series.kind)
        written = sort_by_position([pydicom.dcmread(p) for p in original.dicom_files])
        returned = sort_by_position(viewer.retrieve_series(series.study_uid, series.series_uid))
        assert [ds.SOPInstanceUID for ds in returned] == [ds.SOPInstanceUID for ds in written]
        for got, sent in zip(returned, written, strict=True):
            assert np.array_equal(got.pixel_array, sent.pixel_array)
        assert np.array_equal(affine_from_datasets(returned), affine_from_datasets(written))
        truth = nib.load(str(original.truth["tumour" if series.kind == "osteosarcoma-mr" else "lung"]))
        assert truth.shape == (written[0].Columns, written[0].Rows, len(written))
        assert np.allclose(truth.affine, affine_from_datasets(returned), atol=1e-4)


def test_listing_shows_mr_and_ct_and_a_series_stored_a_moment_ago(
    http: httpx.Client, orthanc: OrthancClient, mr_patient: StoredPatient, tmp_path: Path
) -> None:
    objects = _objects(http)
    modalities = {item["image"]["info"]["Modality"] for item in objects.values()}
    assert {"MR", "CT"} <= modalities
    assert mr_patient.patient.series_uid in objects

    fresh = store_patient(orthanc, "chest-ct", 103, tmp_path)
    assert fresh.patient.series_uid in _objects(http)
    total = http.get("/datastore/").json()["total"]
    assert total == len(_objects(http))


def test_image_download_is_the_decoded_series_in_its_grid(http: httpx.Client, mr_patient: StoredPatient) -> None:
    reply = http.get("/datastore/image", params={"image": mr_patient.patient.series_uid})
    assert reply.status_code == 200
    image = nib.Nifti1Image.from_bytes(gzip.decompress(reply.content))  # a .nii.gz, as 3D Slicer saves it
    volume = volume_from_datasets(mr_patient.datasets)
    assert np.array_equal(np.asanyarray(image.dataobj), volume.array.transpose(2, 1, 0))
    assert np.allclose(image.affine, volume.affine, atol=1e-4)


def test_label_saved_by_the_monailabel_client_becomes_a_valid_seg(
    platform: Settings,
    orthanc: OrthancClient,
    server_url: str,
    mr_patient: StoredPatient,
    tmp_path: Path,
    admin: Account,
) -> None:
    client = monailabel_client(server_url, admin, tmp_path)
    image_id = mr_patient.patient.series_uid
    assert image_id in client.datastore()["objects"]
    truth = nib.load(str(mr_patient.patient.truth["tumour"]))
    truth_mask = np.asanyarray(truth.dataobj).astype(np.uint8)
    assert truth_mask.any()

    reply = client.save_label(
        image_id,
        str(mr_patient.patient.truth["tumour"]),
        tag="final",
        params={"label_info": [{"name": "tumour", "idx": 1}], "author": "Doe^Jane"},
    )
    seg_uid = reply["label"]

    # Stored in Orthanc, referencing its series, valid DICOM.
    state = orthanc.series_state(seg_uid)
    assert state.modality == "SEG"
    seg = orthanc.retrieve_series(state.study_uid, seg_uid)[0]
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == image_id
    assert seg.SegmentSequence[0].SegmentLabel == "tumour"
    assert str(seg.ContentCreatorName) == "platform.admin"  # the login; the client's author is ignored
    seg_file = tmp_path / "seg.dcm"
    seg.save_as(seg_file)
    assert dciodvfy_errors(seg_file) == []

    # Seen at once as this image's final label, and decoded back to the very mask that was sent.
    assert client.datastore()["objects"][image_id]["labels"]["final"]["info"]["SeriesInstanceUID"] == seg_uid
    label_file = client.download_label(seg_uid, "final")
    decoded = nib.load(label_file)
    assert np.array_equal(np.asanyarray(decoded.dataobj) > 0, truth_mask > 0)
    # Active learning no longer proposes it.
    proposed = client.next_sample("first", {})
    assert proposed.get("id") != image_id
    # MONAI Label's temporary upload is gone once the request is done.
    time.sleep(0.5)
    assert leftovers(platform) == []


def test_a_labels_record_numbers_its_segments_as_its_seg_does(
    platform: Settings,
    orthanc: OrthancClient,
    server_url: str,
    ct_patient: StoredPatient,
    tmp_path: Path,
    admin: Account,
) -> None:
    """A label file with values 2 and 7 is a SEG of segments 1 and 2, and its record says so."""
    volume = volume_from_datasets(ct_patient.datasets)
    label_map = np.zeros(volume.array.shape, np.uint8)
    label_map[2:5, 10:20, 10:20] = 2
    label_map[6:8, 30:40, 30:40] = 7
    path = tmp_path / "two-seven.nii.gz"
    nib.save(nib.Nifti1Image(label_map.transpose(2, 1, 0), volume.affine), str(path))
    client = monailabel_client(server_url, admin, tmp_path)
    reply = client.save_label(
        ct_patient.patient.series_uid,
        str(path),
        tag="renumbered",
        params={"label_info": [{"name": "lung", "idx": 2}, {"name": "nodule", "idx": 7}]},
    )
    seg_uid = reply["label"]
    seg = orthanc.retrieve_series(orthanc.series_state(seg_uid).study_uid, seg_uid)[0]
    in_seg = [(int(item.SegmentNumber), str(item.SegmentLabel)) for item in seg.SegmentSequence]
    with engine_for(platform.db_url).connect() as connection:
        segments = connection.execute(select(Segmentation.segments).where(Segmentation.seg_series_uid == seg_uid))
        recorded = [(item["number"], item["label"]) for item in segments.scalar_one()]
    assert in_seg == recorded == [(1, "lung"), (2, "nodule")]


def test_unknown_image_id_is_404(http: httpx.Client) -> None:
    reply = http.get("/datastore/image/info", params={"image": "1.2.3.4.5.6.7"})
    assert reply.status_code == 404
    assert "1.2.3.4.5.6.7" in reply.json()["detail"]


def test_label_of_the_wrong_shape_is_refused_and_leaves_nothing(
    platform: Settings, http: httpx.Client, orthanc: OrthancClient, ct_patient: StoredPatient, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((10, 10, 10), np.uint8), np.eye(4)), str(wrong))
    segs, rows = _seg_count(orthanc), _label_rows(platform)
    reply = http.put(
        "/datastore/label",
        params={"image": ct_patient.patient.series_uid, "tag": "final"},
        files={"label": ("wrong.nii.gz", wrong.read_bytes())},
    )
    assert reply.status_code == 422
    assert "shape" in reply.json()["detail"]
    assert (_seg_count(orthanc), _label_rows(platform)) == (segs, rows)
    assert leftovers(platform) == []


def test_corrupt_dicom_upload_is_refused_and_leaves_nothing(
    platform: Settings, http: httpx.Client, orthanc: OrthancClient, ct_patient: StoredPatient
) -> None:
    before = orthanc.statistics()["CountInstances"]
    good = ct_patient.patient.dicom_files[0].read_bytes()
    truncated = good[: len(good) // 3]
    reply = http.put("/datastore/image", params={"image": "x"}, files={"file": ("broken.dcm", truncated)})
    assert reply.status_code == 422
    assert "DICOM" in reply.json()["detail"]
    reply = http.put("/datastore/image", params={"image": "x"}, files={"file": ("notes.dcm", b"not dicom at all")})
    assert reply.status_code == 422
    # The same garbage through STOW-RS on /dicom-web.
    boundary = "awesomme-test"
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + truncated
        + f"\r\n--{boundary}--\r\n".encode()
    )
    reply = http.post(
        "/dicom-web/studies",
        content=body,
        headers={"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'},
    )
    assert 400 <= reply.status_code < 500
    assert orthanc.statistics()["CountInstances"] == before
    assert leftovers(platform) == []


def test_a_zipped_series_uploads_as_one_image(http: httpx.Client, tmp_path: Path) -> None:
    patient = generate_patient("osteosarcoma-mr", 301, tmp_path / "p", shape=(8, 64, 64))
    archive = tmp_path / "series.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in patient.dicom_files:
            zipped.write(path, path.name)
    reply = http.put("/datastore/image", params={"image": "x"}, files={"file": ("series.zip", archive.read_bytes())})
    assert reply.status_code == 200, reply.text
    assert reply.json()["image"] == patient.series_uid
    assert http.get("/datastore/image/info", params={"image": patient.series_uid}).json()["instances"] == 8


def test_oversized_uploads_are_refused_before_anything_is_stored(
    platform: Settings, http: httpx.Client, orthanc: OrthancClient, tmp_path: Path
) -> None:
    before = orthanc.statistics()["CountInstances"]
    reply = http.put("/datastore/image", files={"file": ("big.dcm", b"\0" * (UPLOAD_MAX_BYTES + 1))})
    assert reply.status_code == 413
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("a.dcm", b"\0" * (UPLOAD_MAX_BYTES + 1))
    assert bomb.stat().st_size < UPLOAD_MAX_BYTES
    reply = http.put("/datastore/image", files={"file": ("bomb.zip", bomb.read_bytes())})
    assert reply.status_code == 422
    assert "unpacks" in reply.json()["detail"]
    assert orthanc.statistics()["CountInstances"] == before
    assert leftovers(platform) == []


def test_dicomweb_passes_only_dicomweb_resources(http: httpx.Client) -> None:
    assert http.get("/dicom-web/studies").status_code == 200
    for path in ("/dicom-web/system", "/dicom-web/studies/../../system", "/dicom-web/tools/find", "/dicom-web/servers"):
        assert http.get(path).status_code == 404, path


def test_cache_stays_under_its_bound_and_follows_changes(
    platform: Settings, http: httpx.Client, orthanc: OrthancClient, tmp_path: Path
) -> None:
    patients = [store_patient(orthanc, "osteosarcoma-mr", seed, tmp_path / str(seed)) for seed in (201, 202, 203)]
    cache_dir = platform.cache_dir
    for stored in patients:
        assert http.get("/datastore/image", params={"image": stored.patient.series_uid}).status_code == 200
        total = sum(p.stat().st_size for p in cache_dir.rglob("*") if p.is_file())
        assert total <= CACHE_MAX_BYTES
    cached = {p.parent.name for p in cache_dir.rglob("*.nii")}
    assert patients[0].patient.series_uid not in cached  # least recently used went out
    assert patients[2].patient.series_uid in cached

    # Change the newest series in Orthanc: the next read sees the change.
    changed = patients[2].datasets[0]
    pixels = changed.pixel_array.copy()
    pixels[0, 0] = pixels[0, 0] + 1
    changed.PixelData = pixels.tobytes()
    time.sleep(1.1)  # Orthanc's LastUpdate has one-second resolution
    for instance_id in orthanc.lookup_all(changed.SOPInstanceUID, "Instance"):  # Orthanc never overwrites
        orthanc.delete_instance(instance_id)
    orthanc.store([changed])
    reply = http.get("/datastore/image", params={"image": patients[2].patient.series_uid})
    image = nib.Nifti1Image.from_bytes(gzip.decompress(reply.content))
    first_slice_index = [ds.SOPInstanceUID for ds in sort_by_position(patients[2].datasets)].index(
        changed.SOPInstanceUID
    )
    assert np.asanyarray(image.dataobj)[0, 0, first_slice_index] == pixels[0, 0]
    assert len(list((cache_dir / patients[2].patient.series_uid.replace("/", "_")).glob("*.nii"))) == 1


def test_status_command_reports_services_and_disk(platform: Settings) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "awesomme.cli", "status", "--json"], capture_output=True, text=True, check=True
    )
    report = json.loads(run.stdout)
    assert report["services"]["server"]["healthy"] is True
    assert report["services"]["orthanc"]["answers"] is True
    assert report["versions"]["monailabel"] == "0.8.5"
    assert report["disk_bytes"]["orthanc"] > 0
    assert 0 < report["disk_bytes"]["cache"] <= CACHE_MAX_BYTES


def test_dicomweb_survives_orthanc_closing_idle_connections(http: httpx.Client) -> None:
    """Orthanc drops a kept-alive connection after about a second idle; a request at that moment must not fail."""
    for step in range(24):
        assert http.get("/dicom-web/studies").status_code == 200, step  # the proxy's pool
        assert http.get("/api/health").json()["checks"]["orthanc"], step  # the REST client's pool
        time.sleep(0.9 + 0.01 * step)
