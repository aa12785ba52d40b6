"""STOW-RS: what is checked is what is stored (issue 18, critical).

A cohort admin of alpha replays each known parser-differential technique against beta's existing series: every
request is refused (4xx) and beta's instances are counted and hashed in Orthanc before and after. Instances are
never overwritten; a legitimate STOW still stores and joins the caller's cohort, with URLs under our server.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.uid import generate_uid

from awesomme.orthanc.client import OrthancClient
from awesomme.phantoms import generate_patient
from tests.integration.conftest import Account, Cohorts, StoredPatient, attach_to_cohort, client_for, store_patient

SHAPE = (3, 32, 32)
DICOM = "application/dicom"


@dataclass(frozen=True)
class World:
    victim: StoredPatient  # beta's series
    own: StoredPatient  # alpha's study, administered by the attacker


@pytest.fixture(scope="module")
def world(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> World:
    out = tmp_path_factory.mktemp("stow-security")
    victim = store_patient(orthanc, "osteosarcoma-mr", 7801, out / "victim", shape=SHAPE)
    own = store_patient(orthanc, "osteosarcoma-mr", 7802, out / "own", shape=SHAPE)
    attach_to_cohort(server_url, admin, cohorts.beta, studies=[victim.patient.study_uid])
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[own.patient.study_uid])
    return World(victim, own)


def encoded(dataset: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, write_like_original=False)
    return buffer.getvalue()


def part(content: bytes, content_type: str = DICOM) -> bytes:
    return f"Content-Type: {content_type}\r\n\r\n".encode() + content


def body(boundary: str, parts: list[bytes]) -> bytes:
    return b"".join(f"--{boundary}\r\n".encode() + p + b"\r\n" for p in parts) + f"--{boundary}--\r\n".encode()


def related(boundary_parameter: str) -> str:
    return f'multipart/related; type="{DICOM}"; {boundary_parameter}'


def snapshot(orthanc: OrthancClient, patient: StoredPatient) -> tuple[int, int, int, list[tuple[str, str]]]:
    """Studies and series holding the victim's UIDs, the series of its study, and (SOP UID, MD5) of its instances."""
    studies = orthanc.lookup_all(patient.patient.study_uid, "Study")
    series = orthanc.lookup_all(patient.patient.series_uid, "Series")
    instances = []
    for series_id in series:
        for instance_id in orthanc.resource("series", series_id)["Instances"]:
            sop = orthanc.resource("instances", instance_id)["MainDicomTags"]["SOPInstanceUID"]
            instances.append((sop, orthanc.instance_md5(instance_id)))
    in_study = sum(len(orthanc.resource("studies", study)["Series"]) for study in studies)
    return len(studies), len(series), in_study, sorted(instances)


def malicious(world: World) -> list[bytes]:
    """What the attacker wants stored: the victim's first image changed, and a new image in the victim's series."""
    changed = pydicom.dcmread(io.BytesIO(encoded(world.victim.datasets[0])))
    changed.PixelData = bytes(len(changed.PixelData))
    added = pydicom.dcmread(io.BytesIO(encoded(world.victim.datasets[1])))
    added.SOPInstanceUID = generate_uid()
    added.file_meta.MediaStorageSOPInstanceUID = added.SOPInstanceUID
    return [encoded(changed), encoded(added)]


def harmless(world: World) -> bytes:
    """A new image in the attacker's own study: what a lenient checker would have approved."""
    dataset = pydicom.dcmread(io.BytesIO(encoded(world.own.datasets[0])))
    dataset.SeriesInstanceUID = generate_uid()
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    return encoded(dataset)


def repeated_uids(world: World) -> bytes:
    """The attacker's image with (0020,000D) and (0020,000E) given twice: first the victim's (what DCMTK keeps),
    then the attacker's own (what pydicom keeps)."""
    content = harmless(world)
    for keyword, value in (
        ("StudyInstanceUID", world.victim.patient.study_uid),
        ("SeriesInstanceUID", world.victim.patient.series_uid),
    ):
        tag = pydicom.datadict.tag_for_keyword(keyword)
        assert tag is not None
        needle = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + b"UI"
        position = content.index(needle, 144)
        value_bytes = value.encode() + (b"\0" if len(value) % 2 else b"")
        content = content[:position] + needle + struct.pack("<H", len(value_bytes)) + value_bytes + content[position:]
    read = pydicom.dcmread(io.BytesIO(content))
    assert read.SeriesInstanceUID != world.victim.patient.series_uid  # the checker's reading
    return content


Technique = Callable[[World], tuple[bytes, str]]


def stow(client: httpx.Client, content: bytes, content_type: str, cohort: int | None = None) -> httpx.Response:
    params = {"cohort": cohort} if cohort is not None else {}
    headers = {"Content-Type": content_type, "Accept": "application/dicom+json"}
    return client.post("/dicom-web/studies", params=params, content=content, headers=headers)


def _repeated_elements(world: World) -> tuple[bytes, str]:
    return body("b0und", [part(repeated_uids(world))]), related("boundary=b0und")


def _space_after_boundary(world: World) -> tuple[bytes, str]:
    # Orthanc strips the space and reads the "--X" parts; requests_toolbelt kept it and read the "-- X" part.
    inner = body("X", [part(p) for p in malicious(world)])
    return body(" X", [part(harmless(world))]) + inner, related("boundary= X")


def _repeated_boundary(world: World) -> tuple[bytes, str]:
    first = body("first", [part(harmless(world))])
    second = body("second", [part(p) for p in malicious(world)])
    return first + second, related("boundary=first; boundary=second")


def _boundary_with_equals(world: World) -> tuple[bytes, str]:
    return body("a=b", [part(p) for p in malicious(world)]), related("boundary=a=b")


def _nested_multipart(world: World) -> tuple[bytes, str]:
    inner = body("inner", [part(p) for p in malicious(world)])
    nested = part(inner, f'multipart/related; type="{DICOM}"; boundary=inner')
    return body("outer", [part(harmless(world)), nested]), related("boundary=outer")


def _not_dicom(world: World) -> tuple[bytes, str]:
    return body("b0und", [part(b"not a DICOM file at all"), *[part(p) for p in malicious(world)]]), related(
        "boundary=b0und"
    )


def _plain(world: World) -> tuple[bytes, str]:
    return body("b0und", [part(p) for p in malicious(world)]), related("boundary=b0und")


@pytest.mark.parametrize(
    "technique",
    [
        _repeated_elements,
        _space_after_boundary,
        _repeated_boundary,
        _boundary_with_equals,
        _nested_multipart,
        _not_dicom,
        _plain,
    ],
    ids=lambda technique: technique.__name__.strip("_"),
)
def test_stow_parser_differentials_cannot_touch_another_cohorts_series(
    technique: Technique, server_url: str, cohorts: Cohorts, world: World, orthanc: OrthancClient
) -> None:
    before = snapshot(orthanc, world.victim)
    content, content_type = technique(world)
    with client_for(server_url, cohorts.alpha_admin) as attacker:
        reply = attacker.post(
            "/dicom-web/studies",
            params={"cohort": cohorts.alpha},
            content=content,
            headers={"Content-Type": content_type},
        )
        assert 400 <= reply.status_code < 500, reply.text
        assert len(reply.text) < 600
        victim_path = f"/dicom-web/studies/{world.victim.patient.study_uid}/series/{world.victim.patient.series_uid}"
        assert attacker.get(victim_path + "/metadata").status_code == 404  # no read access gained
    assert snapshot(orthanc, world.victim) == before
    with client_for(server_url, cohorts.beta_member) as beta:
        assert len(beta.get(victim_path + "/metadata").json()) == SHAPE[0]


def test_stow_duplicate_uid_elements_refused(server_url: str, cohorts: Cohorts, world: World) -> None:
    content, content_type = _repeated_elements(world)
    with client_for(server_url, cohorts.alpha_admin) as attacker:
        reply = attacker.post(
            "/dicom-web/studies",
            params={"cohort": cohorts.alpha},
            content=content,
            headers={"Content-Type": content_type},
        )
    assert reply.status_code == 400
    assert "(0020,000D) more than once" in reply.json()["detail"]


def test_stow_never_overwrites_a_stored_instance(
    server_url: str, admin: Account, cohorts: Cohorts, world: World, orthanc: OrthancClient
) -> None:
    before = snapshot(orthanc, world.victim)
    changed = malicious(world)[0]
    sop = world.victim.datasets[0].SOPInstanceUID
    headers = {"Content-Type": related("boundary=b0und")}
    with client_for(server_url, cohorts.alpha_admin) as attacker:
        reply = attacker.post(
            "/dicom-web/studies",
            params={"cohort": cohorts.alpha},
            content=body("b0und", [part(changed)]),
            headers=headers,
        )
        assert reply.status_code == 403
    with client_for(server_url, admin) as root:  # not even a platform admin replaces an image
        reply = root.post("/dicom-web/studies", content=body("b0und", [part(changed)]), headers=headers)
        assert reply.status_code == 409
        assert sop in reply.json()["detail"]
        # The same content again is no change: accepted.
        same = world.victim.patient.dicom_files[0].read_bytes()
        reply = root.post("/dicom-web/studies", content=body("b0und", [part(same)]), headers=headers)
        assert reply.status_code == 200, reply.text
    assert snapshot(orthanc, world.victim) == before


def test_stow_refuses_a_series_uid_stored_under_another_study(
    server_url: str, admin: Account, cohorts: Cohorts, world: World, orthanc: OrthancClient
) -> None:
    """The victim's series UID under the attacker's own study would be a second Orthanc series with that UID."""
    before = snapshot(orthanc, world.victim)
    dataset = pydicom.dcmread(io.BytesIO(harmless(world)))
    dataset.SeriesInstanceUID = world.victim.patient.series_uid
    content = body("b0und", [part(encoded(dataset))])
    for account, cohort in ((cohorts.alpha_admin, cohorts.alpha), (admin, None)):
        with client_for(server_url, account) as client:
            reply = stow(client, content, related("boundary=b0und"), cohort)
            assert reply.status_code == 409, reply.text
            assert world.victim.patient.series_uid in reply.json()["detail"]
    assert snapshot(orthanc, world.victim) == before


def test_a_series_under_several_studies_is_reported_not_served_half(
    server_url: str, admin: Account, cohorts: Cohorts, world: World, orthanc: OrthancClient, tmp_path: Path
) -> None:
    """Stored straight into Orthanc (not through the platform): the same series UID under a second study."""
    patient = generate_patient("osteosarcoma-mr", 7803, tmp_path, shape=(1, 16, 16))
    twin = pydicom.dcmread(patient.dicom_files[0])
    twin.SeriesInstanceUID = world.victim.patient.series_uid
    orthanc.store([twin])
    try:
        path = f"/dicom-web/studies/{world.victim.patient.study_uid}/series/{world.victim.patient.series_uid}"
        series_uid, study_uid = world.victim.patient.series_uid, world.victim.patient.study_uid
        with client_for(server_url, cohorts.beta_member) as beta:
            reply = beta.get(path + "/metadata")
            assert reply.status_code == 409
            assert world.victim.patient.series_uid in reply.json()["detail"]
            # every route: the studies the caller sees are named, the others only counted
            for answer in (reply, beta.get("/datastore/image/info", params={"image": series_uid})):
                assert answer.status_code == 409, answer.text
                detail = answer.json()["detail"]
                assert study_uid in detail and patient.study_uid not in detail and "1 other you may not see" in detail
        with client_for(server_url, cohorts.alpha_member) as alpha:  # sees neither copy: an unknown series
            assert alpha.get("/datastore/image/info", params={"image": series_uid}).status_code == 404
        with client_for(server_url, admin) as root:
            detail = root.get("/datastore/image/info", params={"image": series_uid}).json()["detail"]
            assert study_uid in detail and patient.study_uid in detail
        status = subprocess.run(
            [sys.executable, "-m", "awesomme.cli", "status", "--json"], capture_output=True, text=True, check=True
        )
        assert json.loads(status.stdout)["ambiguous_series"][series_uid] == ", ".join(
            sorted([study_uid, patient.study_uid])
        )
    finally:
        for study_id in orthanc.lookup_all(patient.study_uid, "Study"):
            orthanc._rest("DELETE", f"/studies/{study_id}").raise_for_status()
    with client_for(server_url, cohorts.beta_member) as beta:
        assert beta.get(path + "/metadata").status_code == 200


def test_a_legitimate_stow_stores_joins_the_cohort_and_answers_our_urls(
    server_url: str, cohorts: Cohorts, world: World, tmp_path: Path
) -> None:
    patient = generate_patient("osteosarcoma-mr", 7804, tmp_path, shape=SHAPE)
    parts = [part(path.read_bytes()) for path in patient.dicom_files]
    headers = {"Content-Type": related("boundary=b0und"), "Accept": "application/dicom+json"}
    with client_for(server_url, cohorts.alpha_admin) as cohort_admin:
        reply = cohort_admin.post(
            "/dicom-web/studies", params={"cohort": cohorts.alpha}, content=body("b0und", parts), headers=headers
        )
        assert reply.status_code == 200, reply.text
        urls = [item["00081190"]["Value"][0] for item in reply.json()["00081199"]["Value"]]
        assert len(urls) == SHAPE[0]
        assert all(url.startswith(f"{server_url}/dicom-web/studies/{patient.study_uid}/") for url in urls), urls
        # The same request again changes nothing and is accepted.
        again = cohort_admin.post(
            "/dicom-web/studies", params={"cohort": cohorts.alpha}, content=body("b0und", parts), headers=headers
        )
        assert again.status_code == 200, again.text
    with client_for(server_url, cohorts.alpha_member) as member:
        path = f"/dicom-web/studies/{patient.study_uid}/series/{patient.series_uid}/metadata"
        assert len(member.get(path).json()) == SHAPE[0]
        found = member.get("/dicom-web/studies", params={"StudyInstanceUID": patient.study_uid}).json()
        assert [item["00081190"]["Value"][0] for item in found] == [
            f"{server_url}/dicom-web/studies/{patient.study_uid}"
        ]
    with client_for(server_url, cohorts.beta_member) as beta:
        assert beta.get(path).status_code == 404
