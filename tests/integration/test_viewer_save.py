"""The viewer's save path on the real stack (real Orthanc, real server): a SEG as OHIF 3.13 writes it in the
browser (``tests/fixtures/ohif/``: written with pydicom as OHIF's adapter lays it out, written by dcmjs itself, and
a SEG captured from a real OHIF run when one is there) saved with
``POST /api/segmentations``, re-written by the platform's writer; the checks that refuse what cannot be stored;
the import of the same file; and the study list narrowed to a cohort (``/dicom-web/studies?cohort=<id>``)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from sqlalchemy import func, select

from awesomme.core.db import session_scope
from awesomme.core.visibility import visibility_of_cohorts
from awesomme.dicom.seg import decode_seg, rgb_to_dicom_lab
from awesomme.dicom.volumes import sort_by_position
from awesomme.models import AuditEvent, Segmentation
from awesomme.orthanc.client import OrthancClient
from tests.dicom_checks import dciodvfy_errors, has_dciodvfy
from tests.integration.conftest import (
    Account,
    Cohorts,
    StoredPatient,
    attach_to_cohort,
    bind_model,
    client_for,
    monailabel_client,
    store_patient,
)
from tests.ohif_seg_files import (
    BITMAP_FIXTURE,
    CAPTURED,
    DCMJS_FIXTURE,
    FIXTURES,
    LABELMAP_FIXTURE,
    SEGMENTS,
    decode_frames,
    phantom_of,
)

LABELMAP_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.7"
# ours (pydicom, as OHIF's adapter lays it out), dcmjs's own (the library the adapter runs), and a captured one
BITMAP_FIXTURES = [name for name in (BITMAP_FIXTURE, DCMJS_FIXTURE, CAPTURED) if (FIXTURES / name).exists()]


@pytest.fixture(scope="module")
def patients(
    orthanc: OrthancClient, server_url: str, admin: Account, cohorts: Cohorts, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, StoredPatient]:
    """The phantom series each fixture's frames reference, in cohort alpha; and a CT study of cohort beta."""
    stored: dict[str, StoredPatient] = {}
    for name in [*BITMAP_FIXTURES, LABELMAP_FIXTURE]:
        phantom = phantom_of(FIXTURES / name)
        key = f"{phantom['kind']}-{phantom['seed']}-{phantom['shape']}"
        if key not in stored:
            out = tmp_path_factory.mktemp("viewer-save")
            stored[key] = store_patient(orthanc, phantom["kind"], phantom["seed"], out, shape=tuple(phantom["shape"]))
            attach_to_cohort(server_url, admin, cohorts.alpha, studies=[stored[key].patient.study_uid])
        stored[name] = stored[key]
    beta = store_patient(orthanc, "chest-ct", 613, tmp_path_factory.mktemp("viewer-beta"))
    attach_to_cohort(server_url, admin, cohorts.beta, studies=[beta.patient.study_uid])
    stored["beta"] = beta
    return stored


@pytest.fixture(scope="module")
def bound(server_url: str, admin: Account) -> None:
    bind_model(server_url, admin, "everything_mr", ["alpha"])


def _fixture(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(FIXTURES / name)


def _bytes(ds: pydicom.Dataset) -> bytes:
    stream = io.BytesIO()
    ds.save_as(stream, write_like_original=False)
    return stream.getvalue()


def _save(server_url: str, account: Account | None, series_uid: str, data: bytes, **fields: str) -> httpx.Response:
    with client_for(server_url, account) as client:
        return client.post(
            "/api/segmentations",
            files={"file": ("segmentation.dcm", data, "application/dicom")},
            data={"series_uid": series_uid, **fields},
        )


def _stored(orthanc: OrthancClient, stored: StoredPatient, seg_uid: str) -> pydicom.Dataset:
    return orthanc.retrieve_series(stored.patient.study_uid, seg_uid)[0]


def _listed(server_url: str, account: Account, series_uid: str, seg_uid: str) -> dict[str, Any]:
    with client_for(server_url, account) as client:
        listing = client.get("/api/segmentations", params={"series_uid": series_uid}).json()
    return next(item for item in listing if item["seg_uid"] == seg_uid)


def _masks_by_label(label_map: np.ndarray, names: dict[int, str]) -> dict[str, np.ndarray]:
    return {name: label_map == number for number, name in names.items() if (label_map == number).any()}


def _seg_count() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(Segmentation)) or 0)


@pytest.mark.parametrize("name", BITMAP_FIXTURES)
def test_an_ohif_seg_is_stored_re_written_with_its_voxels_and_the_login_as_author(
    name: str,
    patients: dict[str, StoredPatient],
    cohorts: Cohorts,
    server_url: str,
    orthanc: OrthancClient,
    tmp_path: Path,
) -> None:
    stored, original = patients[name], _fixture(name)
    source = sort_by_position(stored.datasets)
    forged = {"author": "alpha.admin", "reader": "Someone^Else", "created_by": "alpha.admin"}
    reply = _save(server_url, cohorts.alpha_member, stored.patient.series_uid, _bytes(original), **forged)
    assert reply.status_code == 201, reply.text
    answer = reply.json()
    assert (answer["algorithm_type"], answer["author"], answer["derived_from"]) == ("MANUAL", "alpha.member", None)

    seg = _stored(orthanc, stored, answer["seg_uid"])
    assert seg.SOPInstanceUID != original.SOPInstanceUID and seg.SeriesInstanceUID != original.SeriesInstanceUID
    assert (seg.Manufacturer, str(seg.ContentCreatorName)) == ("AWESOMME", "alpha.member")
    assert {item.SegmentAlgorithmType for item in seg.SegmentSequence} == {"MANUAL"}
    names = {int(item.SegmentNumber): str(item.SegmentLabel) for item in original.SegmentSequence}
    read = decode_seg(seg, source)
    kept = _masks_by_label(read.label_map, dict(read.names))
    sent = _masks_by_label(decode_frames(original, source), names)
    assert kept.keys() == sent.keys() and all(np.array_equal(kept[label], sent[label]) for label in sent)
    by_label = {str(item.SegmentLabel): item for item in original.SegmentSequence}
    for item in seg.SegmentSequence:  # each segment keeps its coded type and colour
        theirs = by_label[str(item.SegmentLabel)]
        assert (
            item.SegmentedPropertyTypeCodeSequence[0].CodeValue == theirs.SegmentedPropertyTypeCodeSequence[0].CodeValue
        )
        if "RecommendedDisplayCIELabValue" in theirs:
            assert list(item.RecommendedDisplayCIELabValue) == list(theirs.RecommendedDisplayCIELabValue)
        assert len(item.RecommendedDisplayCIELabValue) == 3
    if has_dciodvfy():
        seg.save_as(tmp_path / "seg.dcm")
        assert dciodvfy_errors(tmp_path / "seg.dcm") == []

    item = _listed(server_url, cohorts.alpha_admin, stored.patient.series_uid, answer["seg_uid"])
    assert (item["role"], item["tag"], item["author"], item["created_by"], item["reader"], item["origin"]) == (
        "label",
        "final",
        "alpha.member",
        "alpha.member",
        None,
        "label",
    )
    with session_scope() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "label.save", AuditEvent.target == answer["seg_uid"])
        ).all()
        assert [(event.actor, event.outcome) for event in events] == [("alpha.member", "success")]


def test_our_ohif_like_fixture_keeps_oedemas_code_and_both_colours(
    patients: dict[str, StoredPatient], cohorts: Cohorts, server_url: str, orthanc: OrthancClient
) -> None:
    stored = patients[BITMAP_FIXTURE]
    reply = _save(server_url, cohorts.alpha_member, stored.patient.series_uid, _bytes(_fixture(BITMAP_FIXTURE)))
    assert reply.status_code == 201, reply.text
    assert [(s["label"], s["type"]["meaning"]) for s in reply.json()["segments"]] == [
        ("tumour", "Tissue"),
        ("oedema", "Edema"),
    ]
    seg = _stored(orthanc, stored, reply.json()["seg_uid"])
    assert [tuple(item.RecommendedDisplayCIELabValue) for item in seg.SegmentSequence] == [
        rgb_to_dicom_lab(segment.rgb) for segment in SEGMENTS
    ]


def test_an_edit_based_on_the_models_seg_is_semiautomatic_and_derived_from_it(
    patients: dict[str, StoredPatient],
    cohorts: Cohorts,
    server_url: str,
    orthanc: OrthancClient,
    tmp_path: Path,
    bound: None,
) -> None:
    stored = patients[BITMAP_FIXTURE]
    series_uid = stored.patient.series_uid
    _, params = monailabel_client(server_url, cohorts.alpha_member, tmp_path).infer("everything_mr", series_uid, {})
    prediction = params["seg_series_uid"]
    reply = _save(
        server_url,
        cohorts.alpha_member,
        series_uid,
        _bytes(_fixture(BITMAP_FIXTURE)),
        based_on=prediction,
        description="Corrected tumour",
    )
    assert reply.status_code == 201, reply.text
    answer = reply.json()
    assert (answer["algorithm_type"], answer["derived_from"], answer["author"]) == (
        "SEMIAUTOMATIC",
        prediction,
        "alpha.member",
    )
    seg = _stored(orthanc, stored, answer["seg_uid"])
    assert {item.SegmentAlgorithmType for item in seg.SegmentSequence} == {"SEMIAUTOMATIC"}
    assert seg.SegmentSequence[0].SegmentAlgorithmName == "everything_mr"
    # a correction of a demo model's output carries the demo notice, after the user's description
    assert (str(seg.ContentCreatorName), seg.SeriesDescription) == (
        "alpha.member",
        "Corrected tumour (DEMO weights - not for clinical use)",
    )
    item = _listed(server_url, cohorts.alpha_member, series_uid, answer["seg_uid"])
    assert (item["algorithm_type"], item["derived_from"], item["model"], item["role"]) == (
        "SEMIAUTOMATIC",
        prediction,
        "everything_mr",
        "label",
    )

    # based_on must be a prediction of this very series: not a label, not another series' SEG, not unknown
    for based_on in (answer["seg_uid"], "1.2.3.4.5"):
        refused = _save(
            server_url, cohorts.alpha_member, series_uid, _bytes(_fixture(BITMAP_FIXTURE)), based_on=based_on
        )
        assert refused.status_code == 422 and f"based_on {based_on} is not a prediction" in refused.json()["detail"]


def test_a_labelmap_seg_is_refused_with_a_422_naming_its_sop_class(
    patients: dict[str, StoredPatient], cohorts: Cohorts, server_url: str, orthanc: OrthancClient
) -> None:
    stored, before = patients[LABELMAP_FIXTURE], _seg_count()
    data = (FIXTURES / LABELMAP_FIXTURE).read_bytes()
    for route in ("/api/segmentations", "/api/segmentations/import"):
        with client_for(server_url, cohorts.alpha_member) as client:
            reply = client.post(
                route, files={"file": ("seg.dcm", data)}, data={"series_uid": stored.patient.series_uid}
            )
        assert reply.status_code == 422, reply.text
        assert LABELMAP_SOP_CLASS in reply.json()["detail"] and "LABELMAP" in reply.json()["detail"]
    assert _seg_count() == before


def test_a_seg_whose_frame_references_another_series_or_lies_elsewhere_is_refused_naming_the_frame(
    patients: dict[str, StoredPatient], cohorts: Cohorts, server_url: str
) -> None:
    stored, before = patients[BITMAP_FIXTURE], _seg_count()
    foreign = _fixture(BITMAP_FIXTURE)
    source = foreign.PerFrameFunctionalGroupsSequence[1].DerivationImageSequence[0].SourceImageSequence[0]
    source.ReferencedSOPInstanceUID = patients["beta"].datasets[0].SOPInstanceUID
    reply = _save(server_url, cohorts.alpha_member, stored.patient.series_uid, _bytes(foreign))
    assert reply.status_code == 422 and reply.json()["detail"].startswith("frame 2 references instance"), reply.text

    moved = _fixture(BITMAP_FIXTURE)
    position = moved.PerFrameFunctionalGroupsSequence[2].PlanePositionSequence[0]
    position.ImagePositionPatient = [float(v) + 2.0 for v in position.ImagePositionPatient]
    reply = _save(server_url, cohorts.alpha_member, stored.patient.series_uid, _bytes(moved))
    assert reply.status_code == 422 and reply.json()["detail"].startswith("frame 3 lies at"), reply.text

    reply = _save(
        server_url,
        cohorts.alpha_member,
        stored.patient.series_uid,
        _bytes(_fixture(BITMAP_FIXTURE)),
        description="two\\values",
    )
    assert reply.status_code == 422 and "backslash" in reply.json()["detail"], reply.text

    # the whole SEG on another series (beta's member saving to their own series): its frame of reference differs
    reply = _save(
        server_url, cohorts.beta_member, patients["beta"].patient.series_uid, _bytes(_fixture(BITMAP_FIXTURE))
    )
    assert reply.status_code == 422 and "frame of reference" in reply.json()["detail"], reply.text
    assert _seg_count() == before


def test_a_member_of_another_cohort_gets_404_and_nothing_is_stored(
    patients: dict[str, StoredPatient], cohorts: Cohorts, server_url: str
) -> None:
    stored, before, data = patients[BITMAP_FIXTURE], _seg_count(), _bytes(_fixture(BITMAP_FIXTURE))
    reply = _save(server_url, cohorts.beta_member, stored.patient.series_uid, data)
    assert reply.status_code == 404, reply.text
    assert _save(server_url, cohorts.loner, stored.patient.series_uid, data).status_code == 403
    assert _save(server_url, None, stored.patient.series_uid, data).status_code == 401
    assert _seg_count() == before


def test_the_import_route_reads_an_ohif_seg_and_keeps_its_codes_and_colours(
    patients: dict[str, StoredPatient], cohorts: Cohorts, server_url: str, orthanc: OrthancClient
) -> None:
    stored = patients[BITMAP_FIXTURE]
    with client_for(server_url, cohorts.alpha_member) as client:
        reply = client.post(
            "/api/segmentations/import",
            files={"file": ("ohif.dcm", _bytes(_fixture(BITMAP_FIXTURE)))},
            data={"series_uid": stored.patient.series_uid, "reader": "Doe^Jane"},
        )
    assert reply.status_code == 201, reply.text
    seg = _stored(orthanc, stored, reply.json()["seg_uid"])
    assert [item.SegmentedPropertyTypeCodeSequence[0].CodeMeaning for item in seg.SegmentSequence] == [
        "Tissue",
        "Edema",
    ]
    assert [tuple(item.RecommendedDisplayCIELabValue) for item in seg.SegmentSequence] == [
        rgb_to_dicom_lab(segment.rgb) for segment in SEGMENTS
    ]
    assert str(seg.ContentCreatorName) == "Doe^Jane"


# -- the study list of one cohort ----------------------------------------------------------------------------------
def _studies(server_url: str, account: Account, **params: str) -> httpx.Response:
    with client_for(server_url, account) as client:
        return client.get("/dicom-web/studies", params=params)


def _study_uids(reply: httpx.Response) -> set[str]:
    assert reply.status_code == 200, reply.text
    return {item["0020000D"]["Value"][0] for item in reply.json()}


def test_the_study_list_of_a_cohort_lists_only_that_cohorts_studies(
    patients: dict[str, StoredPatient], cohorts: Cohorts, admin: Account, server_url: str
) -> None:
    alpha_study, beta_study = patients[BITMAP_FIXTURE].patient.study_uid, patients["beta"].patient.study_uid
    everything = _study_uids(_studies(server_url, admin))
    assert {alpha_study, beta_study} <= everything
    of_alpha = _study_uids(_studies(server_url, admin, cohort=str(cohorts.alpha)))
    of_beta = _study_uids(_studies(server_url, admin, cohort=str(cohorts.beta)))
    assert alpha_study in of_alpha and beta_study not in of_alpha
    assert beta_study in of_beta and alpha_study not in of_beta
    with session_scope() as session:  # exactly the studies the cohort holds (whole, or some of their series)
        for cohort, listed in ((cohorts.alpha, of_alpha), (cohorts.beta, of_beta)):
            scope = visibility_of_cohorts(session, {cohort})
            assert listed == (scope.studies | scope.partial_studies) & everything
    assert _study_uids(_studies(server_url, cohorts.alpha_member, cohort=str(cohorts.alpha))) == of_alpha

    # QIDO's own parameters still narrow it
    assert _study_uids(
        _studies(server_url, cohorts.alpha_member, cohort=str(cohorts.alpha), StudyInstanceUID=alpha_study)
    ) == {alpha_study}
    assert len(_studies(server_url, admin, cohort=str(cohorts.alpha), limit="1").json()) == 1
    assert _study_uids(_studies(server_url, admin, cohort=str(cohorts.alpha), StudyInstanceUID=beta_study)) == set()
    with client_for(server_url, admin) as client:
        series = client.get(f"/dicom-web/studies/{beta_study}/series", params={"cohort": str(cohorts.alpha)})
    assert series.status_code == 200 and series.json() == []


def test_a_cohort_the_caller_is_not_in_reads_as_an_unknown_one(
    patients: dict[str, StoredPatient], cohorts: Cohorts, server_url: str
) -> None:
    others = _studies(server_url, cohorts.alpha_member, cohort=str(cohorts.beta))
    unknown = _studies(server_url, cohorts.alpha_member, cohort="999999")
    assert (others.status_code, unknown.status_code) == (404, 404)
    assert others.json()["detail"].replace(str(cohorts.beta), "N") == unknown.json()["detail"].replace("999999", "N")
    assert patients["beta"].patient.study_uid not in others.text
    assert _studies(server_url, cohorts.alpha_member, cohort="alpha").status_code == 400
    with client_for(server_url, cohorts.alpha_member) as client:
        twice = client.get("/dicom-web/studies", params={"cohort": [str(cohorts.alpha), str(cohorts.alpha)]})
    assert twice.status_code == 400
