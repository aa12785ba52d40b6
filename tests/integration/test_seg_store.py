"""One SEG store for every writer: an inference, a label save, an import and an interpolation by a member each store
their SEG in Orthanc with its record, its origin and one journal event naming the SEG, its series and its cohort;
a deletion removes all of them with an event of its own. Real Orthanc, real server."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np
import pydicom
import pytest
from sqlalchemy import func, select

from awesomme.analysis.interpolation import segmented_slices
from awesomme.core.db import session_scope
from awesomme.models import AuditEvent, Segmentation, SegmentationOrigin
from awesomme.orthanc.client import OrthancClient
from tests.integration.conftest import (
    Account,
    Cohorts,
    StoredPatient,
    attach_to_cohort,
    bind_model,
    client_for,
    store_patient,
)
from tests.integration.labels import save_label_map
from tests.seg_files import nifti_bytes, truth_mask


@dataclass(frozen=True)
class Written:
    """One SEG a writer stored, and the journal events written meanwhile."""

    seg_uid: str
    events: list[AuditEvent]


@dataclass(frozen=True)
class Setup:
    patient: StoredPatient
    member: str
    cohort: str
    written: dict[str, Written]  # by origin operation


def _last_event_id() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.max(AuditEvent.id))) or 0)


def _journaled(write: Callable[[], str]) -> Written:
    """Run ``write`` (it answers the new SEG's UID) and collect the events appended while it ran."""
    before = _last_event_id()
    seg_uid = write()
    with session_scope() as session:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.id > before).order_by(AuditEvent.id)))
    return Written(seg_uid, events)


def _created(reply: httpx.Response, key: str = "seg_uid") -> str:
    assert reply.status_code in (200, 201), reply.text
    return str(reply.json()[key])


def _sparse_tumour_and_bone(stored: StoredPatient) -> np.ndarray:
    """Bone (value 2) whole, tumour (value 1) on every other of its slices: a gap to interpolate."""
    tumour = truth_mask(stored.patient.truth["tumour"])
    labelled = segmented_slices(tumour)
    assert len(labelled) >= 3, labelled
    label_map = np.zeros(stored.patient.shape, np.uint8)
    label_map[truth_mask(stored.patient.truth["bone"])] = 2
    for k in labelled[::2]:
        label_map[k][tumour[k]] = 1
    return label_map


@pytest.fixture(scope="module")
def setup(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> Setup:
    """A series of cohort alpha, ``everything_mr`` bound to alpha, and one SEG by each writer, all by its member."""
    stored = store_patient(orthanc, "osteosarcoma-mr", 941, tmp_path_factory.mktemp("seg-store"))
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[stored.patient.study_uid])
    bind_model(server_url, admin, "everything_mr", ["alpha"])
    series_uid = stored.patient.series_uid
    member = cohorts.alpha_member
    written: dict[str, Written] = {}
    with client_for(server_url, member) as http:
        written["inference"] = _journaled(
            lambda: _created(
                http.post("/infer/everything_mr", params={"image": series_uid, "output": "json"}), "seg_series_uid"
            )
        )
        # label values 2 and 7: the SEG numbers them 1 and 2, and so must the record
        label = np.zeros(stored.patient.shape, np.uint8)
        label[truth_mask(stored.patient.truth["bone"])] = 7
        label[truth_mask(stored.patient.truth["tumour"])] = 2
        written["label"] = _journaled(
            lambda: save_label_map(server_url, member, stored, label, "Doe^Jane", {2: "tumour", 7: "bone"})
        )
        sparse = nifti_bytes(_sparse_tumour_and_bone(stored), stored.patient.affine)
        written["import"] = _journaled(
            lambda: _created(
                http.post(
                    "/api/segmentations/import",
                    files={"file": ("sparse.nii.gz", sparse, "application/octet-stream")},
                    data={"series_uid": series_uid, "label_map": json.dumps({"1": "tumour", "2": "bone"})},
                )
            )
        )
        body = {"series_uid": series_uid, "seg_uid": written["import"].seg_uid, "segment_number": 1}
        written["interpolation"] = _journaled(lambda: _created(http.post("/api/segmentations/interpolate", json=body)))
    return Setup(stored, member.username, str(cohorts.alpha), written)


ACTIONS = {
    "inference": "inference",
    "label": "label.save",
    "import": "segmentation.import",
    "interpolation": "segmentation.interpolate",
}


def _stored_seg(orthanc: OrthancClient, setup: Setup, seg_uid: str) -> pydicom.Dataset:
    datasets = orthanc.retrieve_series(setup.patient.patient.study_uid, seg_uid)
    assert len(datasets) == 1
    return datasets[0]


@pytest.mark.parametrize("operation", list(ACTIONS))
def test_each_writer_journals_one_event_naming_the_seg_its_series_and_cohort(setup: Setup, operation: str) -> None:
    written = setup.written[operation]
    events = [event for event in written.events if event.action == ACTIONS[operation]]
    assert len(events) == 1, [(event.action, event.target) for event in written.events]
    event = events[0]
    assert (event.target, event.cohort, event.actor, event.outcome) == (
        written.seg_uid,
        setup.cohort,
        setup.member,
        "success",
    )
    assert event.params["series_uid"] == setup.patient.patient.series_uid


@pytest.mark.parametrize("operation", list(ACTIONS))
def test_each_writers_seg_is_in_orthanc_with_its_record_and_origin(
    setup: Setup, operation: str, orthanc: OrthancClient
) -> None:
    seg_uid = setup.written[operation].seg_uid
    seg = _stored_seg(orthanc, setup, seg_uid)
    assert seg.Modality == "SEG"
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == setup.patient.patient.series_uid
    with session_scope() as session:
        record = session.get(Segmentation, seg_uid)
        origin = session.get(SegmentationOrigin, seg_uid)
        assert record is not None and origin is not None
        assert (record.source_series_uid, record.study_uid, record.seg_sop_uid) == (
            setup.patient.patient.series_uid,
            setup.patient.patient.study_uid,
            str(seg.SOPInstanceUID),
        )
        assert (origin.created_by, origin.operation) == (setup.member, operation)
        summary = [(segment["number"], segment["label"]) for segment in record.segments]
    # the record's segment summary numbers its segments as the SEG does
    assert summary == [(int(item.SegmentNumber), str(item.SegmentLabel)) for item in seg.SegmentSequence]
    assert summary, "every writer stored at least one segment"


def test_a_label_saved_with_values_2_and_7_is_summarised_as_segments_1_and_2(setup: Setup) -> None:
    with session_scope() as session:
        record = session.get(Segmentation, setup.written["label"].seg_uid)
        assert record is not None
        assert [(segment["number"], segment["label"]) for segment in record.segments] == [(1, "tumour"), (2, "bone")]


def test_deleting_a_seg_removes_it_its_rows_and_origin_with_one_event(
    setup: Setup, server_url: str, cohorts: Cohorts, orthanc: OrthancClient
) -> None:
    seg_uid = setup.written["label"].seg_uid

    def delete() -> str:
        with client_for(server_url, cohorts.alpha_member) as http:
            reply = http.delete(f"/api/segmentations/{seg_uid}")
        assert reply.status_code == 200, reply.text
        return seg_uid

    written = _journaled(delete)
    events = [event for event in written.events if event.action == "segmentation.delete"]
    assert [(event.target, event.cohort, event.actor, event.outcome) for event in events] == [
        (seg_uid, setup.cohort, setup.member, "success")
    ]
    assert events[0].params["series_uid"] == setup.patient.patient.series_uid
    assert seg_uid not in {str(hit.SeriesInstanceUID) for hit in orthanc.find_series(("SEG",))}
    with session_scope() as session:
        assert session.get(Segmentation, seg_uid) is None
        assert session.get(SegmentationOrigin, seg_uid) is None
    # the other writers' SEGs stay
    for operation in ("inference", "import", "interpolation"):
        assert _stored_seg(orthanc, setup, setup.written[operation].seg_uid).Modality == "SEG"
