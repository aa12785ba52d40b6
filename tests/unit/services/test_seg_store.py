"""The one SEG store: nothing half-written (a SEG whose records cannot be written leaves Orthanc again), and the
event and origin it writes (who acted, which SEG, which series and cohorts).

A fake Orthanc records the calls; the platform database is real (SQLite, then PostgreSQL), one per test.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from pydicom import Dataset
from pydicom.uid import generate_uid
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from awesomme.core import audit
from awesomme.core.db import session_scope
from awesomme.core.errors import Conflict, NotFound
from awesomme.models import (
    AuditEvent,
    Cohort,
    CohortItem,
    Segmentation,
    SegmentationOperation,
    SegmentationOrigin,
)
from awesomme.orthanc.cache import SeriesCache
from awesomme.orthanc.client import OrthancClient
from awesomme.services.seg_store import SegStore

STUDY, SERIES = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"


class FakeOrthanc:
    """Keeps what is stored; records every call."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.series: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    def store(self, datasets: list[Dataset]) -> None:
        for ds in datasets:
            self.calls.append(("store", str(ds.SeriesInstanceUID)))
            if self.refuse:
                raise RuntimeError("Orthanc refused the SEG")
            self.series.add(str(ds.SeriesInstanceUID))

    def delete_series(self, uid: str) -> None:
        self.calls.append(("delete_series", uid))
        if uid not in self.series:
            raise NotFound(f"no series {uid}")
        self.series.discard(uid)


class FakeCache:
    def __init__(self) -> None:
        self.invalidated: list[str] = []

    def invalidate(self, uid: str) -> None:
        self.invalidated.append(uid)


@pytest.fixture()
def cohort(platform_db: str) -> int:
    with session_scope() as session:
        cohort = Cohort(name="alpha", created_by="admin")
        session.add(cohort)
        session.flush()
        session.add(CohortItem(cohort_id=cohort.id, study_uid=STUDY, added_by="admin"))
        return cohort.id


def _store(orthanc: FakeOrthanc, cache: FakeCache | None = None) -> SegStore:
    return SegStore(cast(OrthancClient, orthanc), cast(SeriesCache, cache or FakeCache()))


def _seg() -> Dataset:
    seg = Dataset()
    seg.SeriesInstanceUID, seg.SOPInstanceUID = generate_uid(), generate_uid()
    return seg


def _record(**changes: Any) -> Segmentation:
    fields: dict[str, Any] = {
        "source_series_uid": SERIES,
        "study_uid": STUDY,
        "role": "label",
        "tag": "final",
        "segments": [{"number": 1, "label": "tumour", "volume_ml": 1.5}],
    }
    fields.update(changes)
    return Segmentation(**fields)


def _rows() -> tuple[int, int, int]:
    """Segmentation rows, origins, journal events."""
    with session_scope() as session:
        return tuple(  # type: ignore[return-value]
            int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (Segmentation, SegmentationOrigin, AuditEvent)
        )


def test_a_seg_whose_record_cannot_be_written_is_deleted_from_orthanc_again(cohort: int) -> None:
    orthanc, seg = FakeOrthanc(), _seg()
    uid = str(seg.SeriesInstanceUID)
    with pytest.raises(IntegrityError):
        _store(orthanc).store(seg, _record(tag=None), SegmentationOperation.LABEL)  # tag is NOT NULL
    assert orthanc.calls == [("store", uid), ("delete_series", uid)]
    assert orthanc.series == set()
    assert _rows() == (0, 0, 0)


def test_a_seg_already_recorded_is_refused_before_orthanc_and_the_stored_one_kept(cohort: int) -> None:
    orthanc, seg = FakeOrthanc(), _seg()
    uid = str(seg.SeriesInstanceUID)
    _store(orthanc).store(seg, _record(), SegmentationOperation.LABEL)
    with pytest.raises(Conflict, match="stored already"):
        _store(orthanc).store(seg, _record(), SegmentationOperation.LABEL)
    assert orthanc.calls == [("store", uid)]  # never sent again, never deleted by a clean-up
    assert orthanc.series == {uid}
    assert _rows() == (1, 1, 1)


def test_a_seg_orthanc_refuses_writes_no_record_and_no_event(cohort: int) -> None:
    orthanc = FakeOrthanc(refuse=True)
    with pytest.raises(RuntimeError, match="Orthanc refused"):
        _store(orthanc).store(_seg(), _record(), SegmentationOperation.IMPORT)
    assert [call for call, _ in orthanc.calls] == ["store"]
    assert _rows() == (0, 0, 0)


def test_the_stored_seg_is_journaled_with_its_uid_series_and_cohort_by_the_platform_outside_a_request(
    cohort: int,
) -> None:
    orthanc, seg = FakeOrthanc(), _seg()
    uid = _store(orthanc).store(seg, _record(), SegmentationOperation.INFERENCE, params={"model": "everything_mr"})
    assert uid == str(seg.SeriesInstanceUID) and orthanc.series == {uid}
    with session_scope() as session:
        record = session.get(Segmentation, uid)
        origin = session.get(SegmentationOrigin, uid)
        event = session.scalars(select(AuditEvent)).one()
        assert record is not None and record.seg_sop_uid == str(seg.SOPInstanceUID)
        assert origin is not None and (origin.created_by, origin.operation) == ("platform", "inference")
        assert (event.action, event.target, event.cohort, event.actor, event.outcome) == (
            "inference",
            uid,
            str(cohort),
            "platform",
            "success",
        )
        assert event.params == {
            "series_uid": SERIES,
            "role": "label",
            "tag": "final",
            "segments": 1,
            "model": "everything_mr",
        }


def test_inside_a_request_the_acting_user_creates_the_seg_and_the_event(cohort: int) -> None:
    context = audit.AuditContext(actor="alice", source="192.0.2.7")
    marker = audit.audit_context.set(context)
    try:
        uid = _store(FakeOrthanc()).store(_seg(), _record(), SegmentationOperation.INTERPOLATION)
    finally:
        audit.audit_context.reset(marker)
    assert context.recorded  # the request's middleware writes no second event
    with session_scope() as session:
        origin = session.get(SegmentationOrigin, uid)
        event = session.scalars(select(AuditEvent)).one()
        assert origin is not None and (origin.created_by, origin.operation) == ("alice", "interpolation")
        assert (event.action, event.actor, event.source, event.cohort) == (
            "segmentation.interpolate",
            "alice",
            "192.0.2.7",
            str(cohort),
        )


def test_removal_deletes_the_seg_its_rows_and_origin_with_one_event(cohort: int) -> None:
    orthanc, cache = FakeOrthanc(), FakeCache()
    store = _store(orthanc, cache)
    uid = store.store(_seg(), _record(), SegmentationOperation.LABEL)
    with session_scope() as session:
        record = session.get(Segmentation, uid)
    assert record is not None
    store.remove(record, params={"owner": "platform"})
    assert orthanc.series == set() and cache.invalidated == [uid]
    assert _rows() == (0, 0, 2)
    with session_scope() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "segmentation.delete")).one()
        assert (event.target, event.cohort, event.params["series_uid"]) == (uid, str(cohort), SERIES)

    # already gone from Orthanc: the records go all the same
    uid = store.store(_seg(), _record(), SegmentationOperation.LABEL)
    orthanc.series.discard(uid)
    with session_scope() as session:
        record = session.get(Segmentation, uid)
    assert record is not None
    store.remove(record)
    assert _rows() == (0, 0, 4)


def test_the_record_is_created_by_the_login_whatever_the_writer_set(cohort: int) -> None:
    context = audit.AuditContext(actor="alice", source="192.0.2.7")
    marker = audit.audit_context.set(context)
    try:
        record = _record()
        record.created_by, record.reader = "mallory", "Doe^Jane"
        uid = _store(FakeOrthanc()).store(_seg(), record, SegmentationOperation.IMPORT)
    finally:
        audit.audit_context.reset(marker)
    with session_scope() as session:
        stored = session.get(Segmentation, uid)
        event = session.scalars(select(AuditEvent)).one()
        assert stored is not None and (stored.created_by, stored.reader) == ("alice", "Doe^Jane")
        assert (event.actor, event.params["reader"]) == ("alice", "Doe^Jane")  # the importer and the declared reader
