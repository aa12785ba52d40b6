"""STOW-RS through the platform: what is checked is what is stored.

The body is read once, strictly (``orthanc.multipart``, ``orthanc.checked_instance``); Orthanc receives a body we
write around the checked instances, never the client's bytes. Before storing, every study, series and SOP instance
is looked up in Orthanc: a study under another patient, a series under another study (or several), an instance in
another series, or an existing instance with other content is a 409 naming it (Orthanc never overwrites:
``OverwriteInstances`` is off); an identical re-send is accepted. A STOW into a cohort that de-identifies stores
the instances as its policy makes them (``services.deidentification``): every check below, the store and the check
after it see the de-identified instances and their mapped UIDs, never the ones sent. After storing, what Orthanc
reports and holds must be what was checked, and nothing stored may belong to a cohort the caller does not
administer; otherwise the instances this request added are deleted and the request is refused. STOWs run one at a
time, so nothing another STOW stores falls between the checks and the store.
"""

from __future__ import annotations

import io
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pydicom
from sqlalchemy import select

from awesomme.core import audit
from awesomme.core.db import row_id, session_scope
from awesomme.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from awesomme.core.visibility import Principal, Visibility, cohorts_of_series, visibility_of
from awesomme.models import Cohort
from awesomme.orthanc.checked_instance import CheckedInstance, check_instance
from awesomme.orthanc.client import OrthancClient, get_client
from awesomme.orthanc.multipart import MalformedRequest, encode_multipart, parse_content_type, split_parts
from awesomme.services.cohorts import attach_stored
from awesomme.services.deidentification import deidentify_for_cohort

__all__ = [
    "FAILED_SOP_SEQUENCE",
    "REFERENCED_SOP_SEQUENCE",
    "StowResult",
    "check_target_cohort",
    "default_target_cohort",
    "store",
    "store_checked",
]

REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_INSTANCE_UID = "00081155"
_ONE_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class StowResult:
    status: int
    reply: dict[str, Any]


@dataclass
class _Before:
    """What Orthanc held of the request's UIDs before storing."""

    instance_ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # SOP UID -> Orthanc ids


def check_target_cohort(principal: Principal, cohort: str | None) -> int | None:
    """The cohort the stored series join (None: a platform admin storing without one)."""
    if cohort is None:
        if principal.platform_admin:
            return None
        raise InvalidInput("name the cohort the data goes into: /dicom-web/studies?cohort=<id>")
    cohort_id = row_id(cohort)
    if cohort_id is None:
        raise InvalidInput("cohort must be a cohort id")
    with session_scope() as session:
        if session.get(Cohort, cohort_id) is None or principal.role_in(cohort_id) is None:
            raise NotFound("no such cohort among yours")
    if not principal.administers(cohort_id):
        raise Forbidden(f"only an admin of cohort {cohort_id} may store data into it")
    return cohort_id


def default_target_cohort(principal: Principal, cohort: str | None) -> int | None:
    """The cohort of an upload whose client names none (MONAI Label's bundled viewer): the one the caller administers.

    A named cohort, or a platform admin's upload, follows ``check_target_cohort``. A caller who administers several
    cohorts, or none, is answered with the cohorts to choose from.
    """
    if cohort is not None or principal.platform_admin:
        return check_target_cohort(principal, cohort)
    administered = sorted(principal.administered)
    if len(administered) == 1:
        return check_target_cohort(principal, str(administered[0]))
    if not administered:
        raise InvalidInput("you administer no cohort: only a cohort's admin may upload data into it")
    with session_scope() as session:
        rows = session.scalars(select(Cohort).where(Cohort.id.in_(administered)).order_by(Cohort.name)).all()
        choices = ", ".join(f"{row.name} (id {row.id})" for row in rows)
    raise InvalidInput(f"you administer several cohorts: {choices}; upload from /viewer/ or name one with ?cohort=<id>")


def _read(body: bytes, content_type: str, study_in_path: str | None) -> list[CheckedInstance]:
    parts = split_parts(body, parse_content_type(content_type).boundary)
    instances = [check_instance(part, index) for index, part in enumerate(parts, 1)]
    seen: set[str] = set()
    for instance in instances:
        if instance.sop_instance_uid in seen:
            raise MalformedRequest(f"SOP Instance UID {instance.sop_instance_uid} is in the request more than once")
        seen.add(instance.sop_instance_uid)
        if study_in_path and instance.study_uid != study_in_path:
            raise Conflict(f"SOP instance {instance.sop_instance_uid} belongs to another study than /studies/<uid>")
    return instances


def _study_uids_of(orthanc: OrthancClient, series: list[dict[str, Any]]) -> dict[str, str]:
    """Orthanc series id -> StudyInstanceUID of its parent study."""
    studies = {hit["ParentStudy"] for hit in series}
    uid_of = {study: orthanc.resource("studies", study)["MainDicomTags"]["StudyInstanceUID"] for study in studies}
    return {hit["ID"]: uid_of[hit["ParentStudy"]] for hit in series}


def _same_content(orthanc: OrthancClient, orthanc_id: str, instance: CheckedInstance) -> bool:
    """Whether the stored instance holds what was sent: the same file, or the same data set written otherwise."""
    if orthanc.instance_md5(orthanc_id) in (instance.original_md5, instance.encoded_md5):
        return True
    stored = pydicom.dcmread(io.BytesIO(orthanc.instance_file(orthanc_id)))
    return bool(stored == pydicom.dcmread(io.BytesIO(instance.encoded)))


def _check_store(orthanc: OrthancClient, instances: list[CheckedInstance]) -> _Before:
    """Refuse what would land beside or on top of something else; note what exists already."""
    patients = {i.study_uid: i.patient_id for i in instances}
    studies_of_series = {i.series_uid: i.study_uid for i in instances}
    for instance in instances:
        if studies_of_series[instance.series_uid] != instance.study_uid:
            raise Conflict(f"series {instance.series_uid} is sent under several studies")
        if patients[instance.study_uid] != instance.patient_id:
            raise Conflict(f"study {instance.study_uid} is sent under several patients")
    for hit in orthanc.find("Study", {"StudyInstanceUID": sorted(patients)}):
        uid = hit["MainDicomTags"]["StudyInstanceUID"]
        if hit.get("PatientMainDicomTags", {}).get("PatientID", "") != patients.get(uid):
            raise Conflict(f"study {uid} exists under another patient")
    series_hits = orthanc.find("Series", {"SeriesInstanceUID": sorted(studies_of_series)})
    series_ids: dict[str, list[str]] = defaultdict(list)
    for orthanc_id, study_uid in _study_uids_of(orthanc, series_hits).items():
        uid = next(h["MainDicomTags"]["SeriesInstanceUID"] for h in series_hits if h["ID"] == orthanc_id)
        if study_uid != studies_of_series.get(uid):
            raise Conflict(f"series {uid} exists under another study")
        series_ids[uid].append(orthanc_id)
    for uid, ids in series_ids.items():
        if len(ids) > 1:
            raise Conflict(f"series {uid} exists under several studies or patients")
    by_sop = {i.sop_instance_uid: i for i in instances}
    before = _Before()
    for hit in orthanc.find("Instance", {"SOPInstanceUID": sorted(by_sop)}):
        uid = hit["MainDicomTags"]["SOPInstanceUID"]
        instance = by_sop[uid]
        before.instance_ids[uid].add(hit["ID"])
        if hit["ParentSeries"] not in series_ids.get(instance.series_uid, []):
            raise Conflict(f"SOP instance {uid} exists in another series")
        if not _same_content(orthanc, hit["ID"], instance):
            raise Conflict(f"SOP instance {uid} is stored already with other content (instances are not overwritten)")
    return before


def _foreign_cohort(principal: Principal, pairs: list[tuple[str, str]]) -> str | None:
    """A series of ``pairs`` held by a cohort the caller does not administer, if any."""
    if principal.platform_admin:
        return None
    with session_scope() as session:
        for study, series in pairs:
            if cohorts_of_series(session, study, series) - principal.administered:
                return series
    return None


def _check_access(
    orthanc: OrthancClient, principal: Principal, visibility: Visibility, instances: list[CheckedInstance]
) -> None:
    """Existing studies and series must be the caller's, and every cohort holding them one the caller administers."""
    if principal.platform_admin:
        return
    pairs = sorted({(i.study_uid, i.series_uid) for i in instances})
    for study, series in pairs:
        if orthanc.lookup_all(study, "Study") and not visibility.sees_study(study):
            raise Forbidden(f"study {study} exists outside your cohorts")
        if orthanc.lookup_all(series, "Series") and not visibility.sees_series(study, series):
            raise Forbidden(f"series {series} exists outside your cohorts")
    foreign = _foreign_cohort(principal, pairs)
    if foreign:
        raise Forbidden(f"series {foreign} belongs to a cohort you do not administer")


def _rollback(orthanc: OrthancClient, uids: set[str], before: _Before) -> None:
    """Delete the instances this request added (never one that was there before)."""
    for uid in sorted(uids):
        for orthanc_id in orthanc.lookup_all(uid, "Instance"):
            if orthanc_id not in before.instance_ids.get(uid, set()):
                orthanc.delete_instance(orthanc_id)


def _referenced(reply: dict[str, Any], sequence: str) -> set[str]:
    items = (reply.get(sequence) or {}).get("Value") or []
    return {str(((item.get(REFERENCED_SOP_INSTANCE_UID) or {}).get("Value") or [""])[0]) for item in items}


def _verify_stored(orthanc: OrthancClient, instances: list[CheckedInstance], reply: dict[str, Any]) -> str | None:
    """Why what Orthanc holds now is not what was checked, or None."""
    sent = {i.sop_instance_uid for i in instances}
    failed = _referenced(reply, FAILED_SOP_SEQUENCE)
    if failed:
        return f"the DICOM store refused SOP instances {' '.join(sorted(failed)[:5])}"
    if _referenced(reply, REFERENCED_SOP_SEQUENCE) != sent:
        return "the DICOM store reports other instances than the ones sent"
    series_hits = orthanc.find("Series", {"SeriesInstanceUID": sorted({i.series_uid for i in instances})})
    study_of = _study_uids_of(orthanc, series_hits)
    series_of: dict[str, str] = {}
    for hit in series_hits:
        uid = hit["MainDicomTags"]["SeriesInstanceUID"]
        if uid in series_of:
            return f"series {uid} now exists under several studies or patients"
        series_of[uid] = hit["ID"]
    for instance in instances:
        if study_of.get(series_of.get(instance.series_uid, "")) != instance.study_uid:
            return f"series {instance.series_uid} is not stored under study {instance.study_uid}"
    stored = orthanc.find("Instance", {"SOPInstanceUID": sorted(sent)})
    where = defaultdict(set)
    for hit in stored:
        where[hit["MainDicomTags"]["SOPInstanceUID"]].add(hit["ParentSeries"])
    for instance in instances:
        if where.get(instance.sop_instance_uid) != {series_of[instance.series_uid]}:
            return f"SOP instance {instance.sop_instance_uid} is not stored where it was checked"
    return None


def _join(cohort_id: int, username: str, instances: list[CheckedInstance]) -> None:
    stored = {(i.study_uid, i.series_uid) for i in instances}
    with session_scope() as session:
        attach_stored(session, cohort_id, username, stored)
        target = " ".join(sorted(series for _, series in stored))
        audit.record(session, "data.stored", target=target, cohort=str(cohort_id), params={"series": len(stored)})


def store(
    principal: Principal,
    visibility: Visibility,
    cohort_id: int | None,
    body: bytes,
    content_type: str,
    study_in_path: str | None = None,
) -> StowResult:
    """Check, store and verify one STOW-RS request; the stored series join ``cohort_id``."""
    return store_checked(principal, visibility, cohort_id, _read(body, content_type, study_in_path))


def store_checked(
    principal: Principal, visibility: Visibility, cohort_id: int | None, instances: list[CheckedInstance]
) -> StowResult:
    """Store and verify instances read and checked already (``check_instance``, or the platform's own encoding of a
    dataset it wrote: an import's de-identified instances), each SOP Instance UID once, as ``store`` does."""
    if len({i.sop_instance_uid for i in instances}) != len(instances):
        raise MalformedRequest("a SOP Instance UID is in the request more than once")
    orthanc = get_client()
    with _ONE_AT_A_TIME:
        if cohort_id is not None:
            # The cohort's policy first: from here on, the instances are what Orthanc receives and what is verified.
            with session_scope() as session:
                instances = deidentify_for_cohort(session, orthanc, cohort_id, instances)
        if not principal.platform_admin:
            # What the caller sees now: a STOW that ended while this one waited (a viewer sends one file per request,
            # several at once) may have joined the same study to the caller's cohort.
            with session_scope() as session:
                visibility = visibility_of(session, principal)
        _check_access(orthanc, principal, visibility, instances)
        before = _check_store(orthanc, instances)
        forwarded, forwarded_type = encode_multipart(i.encoded for i in instances)
        status, reply = orthanc.stow(forwarded, forwarded_type)
        added = {i.sop_instance_uid for i in instances} | _referenced(reply, REFERENCED_SOP_SEQUENCE)
        if status not in (200, 202):
            _rollback(orthanc, added, before)
            raise InvalidInput(f"the DICOM store refused the instances (status {status})")
        problem = _verify_stored(orthanc, instances, reply)
        if problem is not None:
            _rollback(orthanc, added, before)
            raise Conflict(f"nothing was stored: {problem}")
        foreign = _foreign_cohort(principal, sorted({(i.study_uid, i.series_uid) for i in instances}))
        if foreign:
            _rollback(orthanc, added, before)
            raise Forbidden(f"nothing was stored: series {foreign} belongs to a cohort you do not administer")
        if cohort_id is not None:
            _join(cohort_id, principal.username, instances)
    return StowResult(status, reply)
