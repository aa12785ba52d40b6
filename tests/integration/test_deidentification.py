"""De-identification on the real stack: a cohort's policy routes, STOW into a de-identifying cohort (what Orthanc
holds, read back byte for byte), a re-STOW, the attach rule, and Orthanc's own Basic Profile anonymizer as an oracle.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from awesomme.core.cohort_keys import cohort_key_file
from awesomme.core.config import get_settings
from awesomme.dicom.deidentify import DeidentificationPolicy, deidentify, encode
from awesomme.orthanc.client import OrthancClient
from awesomme.phantoms import generate_patient
from awesomme.seeding import DEMO_COHORTS, ensure_demo_admin, ensure_demo_cohorts
from tests.integration.conftest import Account, Cohorts, client_for, create_account

SHAPE = (3, 24, 24)
DICOM = "application/dicom"
BOUNDARY = "deid-boundary"
CANARIES = (
    "CanaryFamily",
    "CNRY-MRN-4711",
    "CNRY-ACCESSION",
    "CNRY-HOSPITAL",
    "CNRY-STUDY-DESC",
    "CNRY-SERIES-DESC",
    "CNRY-COMMENT",
    "CNRY-NESTED",
    "CNRY-PRIVATE",
    "CNRY-OTHER-ID",
    "19380527",
)


@dataclass(frozen=True)
class DeidCohort:
    id: int
    admin: Account
    member: Account


@pytest.fixture(scope="module")
def deid_cohort(server_url: str, admin: Account) -> DeidCohort:
    headers = admin.headers(server_url)
    reply = httpx.post(f"{server_url}/api/cohorts", json={"name": f"deid-{uuid.uuid4().hex[:8]}"}, headers=headers)
    assert reply.status_code == 201, reply.text
    cohort_id = reply.json()["id"]
    people = DeidCohort(cohort_id, create_account("deid.admin"), create_account("deid.member"))
    for account, role in ((people.admin, "admin"), (people.member, "member")):
        url = f"{server_url}/api/cohorts/{cohort_id}/members/{account.username}"
        assert httpx.put(url, json={"role": role}, headers=headers).status_code == 200
    return people


def planted_patient(out: Path, seed: int) -> list[Dataset]:
    """A CT phantom with identifying values at the top level, in nested sequences, a private block and descriptions."""
    patient = generate_patient("chest-ct", seed, out, shape=SHAPE)
    datasets = []
    for path in patient.dicom_files:
        ds = pydicom.dcmread(path)
        ds.PatientName = "CanaryFamily^Given"
        ds.PatientID = "CNRY-MRN-4711"
        ds.PatientBirthDate = "19380527"
        ds.AccessionNumber = "CNRY-ACCESSION"
        ds.InstitutionName = "CNRY-HOSPITAL"
        ds.StudyDescription = "CNRY-STUDY-DESC"
        ds.SeriesDescription = "CNRY-SERIES-DESC"
        ds.ImageComments = "CNRY-COMMENT"
        request = Dataset()
        request.AccessionNumber = "CNRY-NESTED"
        request.RequestedProcedureID = "CNRY-NESTED"
        ds.RequestAttributesSequence = Sequence([request])
        other = Dataset()
        other.PatientID = "CNRY-OTHER-ID"
        ds.OtherPatientIDsSequence = Sequence([other])
        ds.private_block(0x0013, "CNRY VENDOR", create=True).add_new(0x01, "LO", "CNRY-PRIVATE")
        datasets.append(ds)
    return datasets


def stow_body(datasets: list[Dataset]) -> bytes:
    parts = [f"--{BOUNDARY}\r\nContent-Type: {DICOM}\r\n\r\n".encode() + encode(ds) + b"\r\n" for ds in datasets]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def stow(http: httpx.Client, cohort_id: int | None, datasets: list[Dataset]) -> httpx.Response:
    params = {"cohort": str(cohort_id)} if cohort_id is not None else {}
    content_type = f'multipart/related; type="{DICOM}"; boundary={BOUNDARY}'
    return http.post(
        "/dicom-web/studies", params=params, content=stow_body(datasets), headers={"Content-Type": content_type}
    )


def stored_sop_uids(reply: httpx.Response) -> list[str]:
    return [item["00081155"]["Value"][0] for item in reply.json()["00081199"]["Value"]]


def stored_file(orthanc: OrthancClient, sop_uid: str) -> bytes:
    [orthanc_id] = orthanc.lookup_all(sop_uid, "Instance")
    return orthanc.instance_file(orthanc_id)


def test_policy_routes_members_read_platform_admins_change_and_journal(
    server_url: str, admin: Account, cohorts: Cohorts, deid_cohort: DeidCohort
) -> None:
    path = f"/api/cohorts/{deid_cohort.id}/deidentification"
    with client_for(server_url, deid_cohort.member) as member:
        assert member.get(path).json() == {
            "cohort_id": deid_cohort.id,
            "identified": False,
            "options": [],
            "allow_burned_in": False,
        }
        listed = {c["id"]: c["identified"] for c in member.get("/api/cohorts").json()}
        assert listed == {deid_cohort.id: False}
    with client_for(server_url, deid_cohort.admin) as cohort_admin:
        refused = cohort_admin.put(path, json={"identified": True, "options": []})
        assert refused.status_code == 403
    with client_for(server_url, cohorts.beta_member) as stranger:
        assert stranger.get(path).status_code == 404
    with client_for(server_url, cohorts.alpha_admin) as alpha_admin:
        assert alpha_admin.get(f"/api/cohorts/{cohorts.alpha}/deidentification").json()["identified"] is True
    with client_for(server_url, admin) as root:
        assert root.put(path, json={"identified": False, "options": ["retain_safe_private"]}).status_code == 422
        changed = root.put(path, json={"identified": False, "options": ["retain_longitudinal_modified_dates"]})
        assert changed.status_code == 200, changed.text
        assert changed.json()["options"] == ["retain_longitudinal_modified_dates"]
        events = root.get("/api/audit", params={"action": "cohort.deidentification.set"}).json()
        rows = events["events"] if isinstance(events, dict) else events
        assert any(str(row.get("cohort")) == str(deid_cohort.id) for row in rows)
    with client_for(server_url, deid_cohort.member) as member:
        assert member.get(path).json()["options"] == ["retain_longitudinal_modified_dates"]


def test_stow_into_a_deidentifying_cohort_stores_none_of_the_planted_values(
    server_url: str, orthanc: OrthancClient, deid_cohort: DeidCohort, tmp_path: Path
) -> None:
    datasets = planted_patient(tmp_path / "planted", 9301)
    originals = {str(ds.get(k)) for ds in datasets for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}
    with client_for(server_url, deid_cohort.admin) as http:
        reply = stow(http, deid_cohort.id, datasets)
        assert reply.status_code == 200, reply.text
        sop_uids = stored_sop_uids(reply)
        assert len(sop_uids) == len(datasets) and not set(sop_uids) & originals
        for uid in originals:
            assert not orthanc.lookup_all(uid, "Instance") and not orthanc.lookup_all(uid, "Series")
        stored = [stored_file(orthanc, uid) for uid in sop_uids]
        for content in stored:
            leaks = [value for value in (*CANARIES, *originals) if value.encode() in content]
            assert not leaks, leaks
            ds = pydicom.dcmread(io.BytesIO(content))
            assert ds.PatientIdentityRemoved == "YES" and ds.LongitudinalTemporalInformationModified == "MODIFIED"
        by_position = {pydicom.dcmread(io.BytesIO(c)).InstanceNumber: pydicom.dcmread(io.BytesIO(c)) for c in stored}
        for original in datasets:
            assert by_position[original.InstanceNumber].PixelData == original.PixelData
        assert cohort_key_file(get_settings(), deid_cohort.id).stat().st_mode & 0o077 == 0
        # The cohort's member sees the study under its new UIDs only.
        study_uid = pydicom.dcmread(io.BytesIO(stored[0])).StudyInstanceUID
        with client_for(server_url, deid_cohort.member) as member:
            listed = {s["0020000D"]["Value"][0] for s in member.get("/dicom-web/studies").json()}
            assert study_uid in listed and not listed & originals

        # The same files again: the same study, series and instances; nothing added.
        before = len(orthanc.resource("studies", orthanc.lookup_all(study_uid, "Study")[0])["Series"])
        again = stow(http, deid_cohort.id, datasets)
        assert again.status_code == 200, again.text
        assert sorted(stored_sop_uids(again)) == sorted(sop_uids)
        assert len(orthanc.lookup_all(study_uid, "Study")) == 1
        assert len(orthanc.resource("studies", orthanc.lookup_all(study_uid, "Study")[0])["Series"]) == before


def test_burned_in_annotation_is_refused_and_nothing_is_stored(
    server_url: str, orthanc: OrthancClient, deid_cohort: DeidCohort, tmp_path: Path
) -> None:
    datasets = planted_patient(tmp_path / "burned", 9302)
    datasets[-1].BurnedInAnnotation = "YES"
    with client_for(server_url, deid_cohort.admin) as http:
        reply = stow(http, deid_cohort.id, datasets)
    assert reply.status_code == 422 and "Burned In Annotation" in reply.text
    assert not orthanc.find("Study", {"AccessionNumber": ["CNRY-ACCESSION"]})
    study_uid = str(datasets[0].StudyInstanceUID)
    assert not orthanc.lookup_all(study_uid, "Study")


def test_a_platform_admins_stow_without_a_cohort_is_stored_as_sent(
    server_url: str, admin: Account, orthanc: OrthancClient, tmp_path: Path
) -> None:
    patient = generate_patient("chest-ct", 9303, tmp_path / "plain", shape=SHAPE)
    datasets = [pydicom.dcmread(path) for path in patient.dicom_files]
    with client_for(server_url, admin) as http:
        reply = stow(http, None, datasets)
    assert reply.status_code == 200, reply.text
    assert sorted(stored_sop_uids(reply)) == sorted(str(ds.SOPInstanceUID) for ds in datasets)
    stored = pydicom.dcmread(io.BytesIO(stored_file(orthanc, str(datasets[0].SOPInstanceUID))))
    assert stored.PatientID == datasets[0].PatientID and stored.StudyInstanceUID == datasets[0].StudyInstanceUID
    assert stored.get("DeidentificationMethod") == datasets[0].get("DeidentificationMethod")


def test_attaching_a_study_needs_it_to_meet_the_cohorts_policy(
    server_url: str, admin: Account, orthanc: OrthancClient, deid_cohort: DeidCohort, tmp_path: Path
) -> None:
    identified = [pydicom.dcmread(p) for p in generate_patient("chest-ct", 9304, tmp_path / "a", SHAPE).dicom_files]
    for ds in identified:
        del ds.PatientIdentityRemoved  # the phantoms say YES (they are synthetic): this one says nothing
    orthanc.store(identified)
    policy = DeidentificationPolicy()
    key = b"another platform's key, 32 bytes"
    source = [pydicom.dcmread(p) for p in generate_patient("chest-ct", 9305, tmp_path / "b", SHAPE).dicom_files]
    clean = [deidentify(ds, policy, key, pseudonym="EXT-1", keep_uids=()).dataset for ds in source]
    orthanc.store([pydicom.dcmread(io.BytesIO(encode(ds))) for ds in clean])
    path = f"/api/cohorts/{deid_cohort.id}/studies"
    with client_for(server_url, admin) as root:
        refused = root.post(path, json={"study_uids": [str(identified[0].StudyInstanceUID)]})
        assert refused.status_code == 409 and "not de-identified" in refused.text
        accepted = root.post(path, json={"study_uids": [str(clean[0].StudyInstanceUID)]})
        assert accepted.status_code == 200, accepted.text
        # An identified cohort takes either.
        alpha_like = root.post("/api/cohorts", json={"name": f"ident-{uuid.uuid4().hex[:8]}", "identified": True})
        ok = root.post(
            f"/api/cohorts/{alpha_like.json()['id']}/studies",
            json={"study_uids": [str(identified[0].StudyInstanceUID)]},
        )
        assert ok.status_code == 200, ok.text


def test_no_value_orthancs_basic_profile_removes_survives_ours(
    server_url: str, orthanc: OrthancClient, deid_cohort: DeidCohort, tmp_path: Path
) -> None:
    """Oracle: Orthanc's own anonymizer (Basic Profile) on the same planted input, in the test's throw-away Orthanc."""
    [planted] = planted_patient(tmp_path / "oracle", 9306)[:1]
    orthanc.store([planted])
    [orthanc_id] = orthanc.lookup_all(str(planted.SOPInstanceUID), "Instance")
    reply = orthanc._rest("POST", f"/instances/{orthanc_id}/anonymize", json={"Force": True})
    assert reply.status_code == 200, reply.text
    theirs = pydicom.dcmread(io.BytesIO(reply.content))
    orthanc.delete_instance(orthanc_id)
    ours = deidentify(planted, DeidentificationPolicy(), b"k" * 32, pseudonym=None, keep_uids=()).dataset
    survivors = []
    for element in planted:
        if element.tag.is_private or element.tag in theirs or element.VR == "SQ":
            continue
        kept = ours.get(element.tag)
        if kept is not None and kept.value and kept.value == element.value:
            survivors.append(element.keyword)
    assert not survivors, survivors
    removed_by_them = {e.keyword for e in planted if e.tag not in theirs and not e.tag.is_private}
    assert {"InstitutionName", "StudyDescription", "SeriesDescription", "ImageComments"} <= removed_by_them


def test_the_bundled_viewers_upload_one_file_per_request_lands_in_one_deidentified_series(
    server_url: str, orthanc: OrthancClient, deid_cohort: DeidCohort, tmp_path: Path
) -> None:
    """MONAI Label's bundled OHIF uploads a series one file per request: each is de-identified on its own and they
    still land in one study and one series (keyed UIDs), none of them under its original UIDs."""
    datasets = planted_patient(tmp_path / "viewer", 9307)
    boundary = str(uuid.uuid4())
    content_type = f'multipart/related; type="{DICOM}"; boundary="{boundary}"'
    sop_uids = []
    with httpx.Client(base_url=server_url, timeout=120) as browser:
        form = {"username": deid_cohort.admin.username, "password": deid_cohort.admin.password}
        assert browser.post("/api/auth/session", data=form).status_code == 200
        for ds in datasets:
            body = f"\r\n--{boundary}\r\nContent-Type: {DICOM}\r\n\r\n".encode() + encode(ds)
            body += f"\r\n--{boundary}--".encode()
            reply = browser.post("/proxy/dicom/wado/studies", content=body, headers={"Content-Type": content_type})
            assert reply.status_code == 200, reply.text
            sop_uids += stored_sop_uids(reply)
    stored = [pydicom.dcmread(io.BytesIO(stored_file(orthanc, uid))) for uid in sop_uids]
    assert len({ds.StudyInstanceUID for ds in stored}) == 1 and len({ds.SeriesInstanceUID for ds in stored}) == 1
    assert stored[0].SeriesInstanceUID != datasets[0].SeriesInstanceUID
    assert not orthanc.lookup_all(str(datasets[0].StudyInstanceUID), "Study")
    assert all(ds.PatientIdentityRemoved == "YES" and "CanaryFamily" not in str(ds.PatientName) for ds in stored)


def test_uids_the_cohort_holds_are_kept_not_mapped_again(
    server_url: str, admin: Account, orthanc: OrthancClient, tmp_path: Path
) -> None:
    """A cohort that stored a series as sent, then de-identifies: a new instance of that series (referencing one
    stored before) joins the stored study and series and keeps its reference; only its own new UID is mapped."""
    datasets = [pydicom.dcmread(p) for p in generate_patient("chest-ct", 9308, tmp_path / "k", SHAPE).dicom_files]
    with client_for(server_url, admin) as root:
        created = root.post("/api/cohorts", json={"name": f"switch-{uuid.uuid4().hex[:8]}", "identified": True})
        cohort_id = created.json()["id"]
        assert stow(root, cohort_id, datasets[:2]).status_code == 200
        policy = root.put(f"/api/cohorts/{cohort_id}/deidentification", json={"identified": False, "options": []})
        assert policy.status_code == 200, policy.text
        extra = datasets[2]
        source = Dataset()
        source.ReferencedSOPClassUID = datasets[0].SOPClassUID
        source.ReferencedSOPInstanceUID = datasets[0].SOPInstanceUID
        extra.SourceImageSequence = Sequence([source])
        reply = stow(root, cohort_id, [extra])
        assert reply.status_code == 200, reply.text
    [sop_uid] = stored_sop_uids(reply)
    assert sop_uid != extra.SOPInstanceUID
    stored = pydicom.dcmread(io.BytesIO(stored_file(orthanc, sop_uid)))
    assert stored.StudyInstanceUID == extra.StudyInstanceUID and stored.SeriesInstanceUID == extra.SeriesInstanceUID
    assert stored.FrameOfReferenceUID == extra.FrameOfReferenceUID
    assert stored.SourceImageSequence[0].ReferencedSOPInstanceUID == datasets[0].SOPInstanceUID
    assert stored.PatientIdentityRemoved == "YES" and stored.PatientID == datasets[0].PatientID  # the stored study's
    assert len(orthanc.lookup_all(str(extra.SeriesInstanceUID), "Series")) == 1


def test_the_demo_cohorts_of_synthetic_phantoms_are_identified(server_url: str, admin: Account) -> None:
    ensure_demo_admin(get_settings())
    ids = ensure_demo_cohorts([])
    with client_for(server_url, admin) as root:
        listed = {cohort["name"]: cohort["identified"] for cohort in root.get("/api/cohorts").json()}
        for name, _ in DEMO_COHORTS.values():
            assert listed[name] is True
            assert root.get(f"/api/cohorts/{ids[name]}/deidentification").json()["identified"] is True
