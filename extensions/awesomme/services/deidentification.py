"""Cohorts' de-identification policies, and applying them to what is stored into a cohort.

A cohort is either ``identified`` (data stored as sent: the synthetic demo cohorts) or de-identifying: PS3.15 Annex
E's Basic Profile with the cohort's options (``dicom.deidentify``), under the cohort's own key
(``core.cohort_keys``: a file, never the database), before Orthanc receives anything. Members of a cohort (and
platform admins) read its policy; only platform admins change it, and every change is journaled.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from sqlalchemy.orm import Session

from awesomme.core.cohort_keys import cohort_key
from awesomme.core.config import get_settings
from awesomme.core.errors import Conflict, InvalidInput, NotFound
from awesomme.core.visibility import Principal, visibility_of_cohorts
from awesomme.dicom.deidentify import (
    OPTIONS,
    DeidentificationPolicy,
    DeidentificationRefused,
    deidentify,
    encode,
    meets_policy,
)
from awesomme.models import Cohort
from awesomme.orthanc.checked_instance import CheckedInstance
from awesomme.orthanc.client import OrthancClient

__all__ = [
    "PolicyView",
    "deidentify_for_cohort",
    "kept_uids",
    "policy_of",
    "read_policy",
    "refuse_unless_meets_policy",
    "set_policy",
]


UID_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)*$")


@dataclass(frozen=True)
class PolicyView:
    cohort_id: int
    identified: bool
    options: list[str]
    allow_burned_in: bool

    def as_json(self) -> dict[str, object]:
        return self.__dict__.copy()


def policy_of(cohort: Cohort) -> DeidentificationPolicy:
    return DeidentificationPolicy(
        identified=bool(cohort.identified),
        options=frozenset(cohort.deidentification_options or []),
        allow_burned_in=bool(cohort.allow_burned_in),
    )


def _view(cohort: Cohort) -> PolicyView:
    policy = policy_of(cohort)
    options: list[str] = [str(option) for option in OPTIONS if option in policy.options]
    return PolicyView(cohort.id, policy.identified, options, policy.allow_burned_in)


def _visible_cohort(session: Session, principal: Principal, cohort_id: int) -> Cohort:
    """The cohort, for its members and platform admins; the same 404 for anyone else as for no cohort."""
    cohort = session.get(Cohort, cohort_id)
    if cohort is None or (principal.role_in(cohort_id) is None and not principal.platform_admin):
        raise NotFound(f"no cohort {cohort_id}")
    return cohort


def read_policy(session: Session, principal: Principal, cohort_id: int) -> PolicyView:
    return _view(_visible_cohort(session, principal, cohort_id))


def set_policy(
    session: Session, principal: Principal, cohort_id: int, identified: bool, options: list[str], allow_burned_in: bool
) -> PolicyView:
    """Replace the cohort's policy (the route lets platform admins only). Data stored before stays as it is."""
    cohort = _visible_cohort(session, principal, cohort_id)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InvalidInput(f"unknown de-identification option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}")
    cohort.identified = identified
    cohort.deidentification_options = [option for option in OPTIONS if option in options]
    cohort.allow_burned_in = allow_burned_in
    session.flush()
    return _view(cohort)


def refuse_unless_meets_policy(orthanc: OrthancClient, cohort: Cohort, study_uid: str, series_uid: str = "") -> None:
    """A study (or series) attached to a de-identifying cohort must be de-identified already: every instance marked
    Patient Identity Removed YES (checked on one instance of each series). 409 otherwise."""
    policy = policy_of(cohort)
    if policy.identified:
        return
    query = {"StudyInstanceUID": [study_uid]}
    if series_uid:
        query["SeriesInstanceUID"] = [series_uid]
    for series in orthanc.find("Series", query):
        instances = series.get("Instances") or []
        if not instances:
            continue
        tags = orthanc.resource("instances", f"{instances[0]}/simplified-tags")
        if not meets_policy(tags, policy):
            uid = series.get("MainDicomTags", {}).get("SeriesInstanceUID", "")
            raise Conflict(
                f"series {uid} of study {study_uid} is not de-identified (Patient Identity Removed is not YES) and "
                f"cohort {cohort.name} de-identifies: store it through the cohort (STOW ?cohort=, an import) instead"
            )


def _uids_in(dataset: Dataset, found: set[str]) -> None:
    """Every UID value of ``dataset`` and its items (the candidates for keeping)."""
    for element in dataset:
        if element.VR == "SQ":
            for item in element.value or []:
                _uids_in(item, found)
        elif element.VR == "UI" and element.value:
            values = element.value if isinstance(element.value, list | MultiValue) else [element.value]
            found.update(str(value) for value in values)


def kept_uids(session: Session, orthanc: OrthancClient, cohort_id: int, datasets: Sequence[Dataset]) -> set[str]:
    """The UIDs of ``datasets`` (their own and those they reference) that the cohort holds already: its studies, its
    series with their frame of reference, and their instances. They are kept, not mapped again (a SEG drawn on the
    cohort's series keeps pointing at them; more instances join their series)."""
    candidates: set[str] = set()
    for dataset in datasets:
        _uids_in(dataset, candidates)
    candidates = {uid for uid in candidates if UID_PATTERN.match(uid) and len(uid) <= 64}
    if not candidates:
        return set()
    visible = visibility_of_cohorts(session, {cohort_id})
    kept = {uid for uid in candidates if visible.sees_study(uid)}
    kept_series: set[str] = set()
    for hit in orthanc.find("Series", {"SeriesInstanceUID": sorted(candidates)}):
        study = orthanc.resource("studies", hit["ParentStudy"])["MainDicomTags"]["StudyInstanceUID"]
        uid = hit["MainDicomTags"]["SeriesInstanceUID"]
        if not visible.sees_series(study, uid):
            continue
        kept |= {study, uid}
        kept_series.add(hit["ID"])
        instances = hit.get("Instances") or []
        if instances:
            tags = orthanc.resource("instances", f"{instances[0]}/simplified-tags")
            frame = str(tags.get("FrameOfReferenceUID") or "")
            if frame:
                kept.add(frame)
    if kept_series:
        for hit in orthanc.find("Instance", {"SOPInstanceUID": sorted(candidates)}):
            if hit.get("ParentSeries") in kept_series:
                kept.add(hit["MainDicomTags"]["SOPInstanceUID"])
    return kept


def _stored_patient(orthanc: OrthancClient, study_uid: str) -> str | None:
    """The PatientID a study is stored under, if it is stored."""
    for hit in orthanc.find("Study", {"StudyInstanceUID": [study_uid]}):
        return str(hit.get("PatientMainDicomTags", {}).get("PatientID", ""))
    return None


def _checked(dataset: Dataset, index: int) -> CheckedInstance:
    """The de-identified instance as STOW forwards it: our own encoding of the dataset the engine wrote (its UIDs
    were checked on the way in, or are keyed ones)."""
    try:
        encoded = encode(dataset)
    except (ValueError, TypeError, KeyError, struct.error) as error:
        raise InvalidInput(f"part {index} cannot be encoded once de-identified") from error
    return CheckedInstance(
        study_uid=str(dataset.StudyInstanceUID),
        series_uid=str(dataset.SeriesInstanceUID),
        sop_instance_uid=str(dataset.SOPInstanceUID),
        patient_id=str(dataset.get("PatientID", "") or ""),
        encoded=encoded,
        original_md5=hashlib.md5(encoded, usedforsecurity=False).hexdigest(),
    )


def deidentify_for_cohort(
    session: Session, orthanc: OrthancClient, cohort_id: int, instances: list[CheckedInstance]
) -> list[CheckedInstance]:
    """``instances`` as the cohort stores them: unchanged for an identified cohort; otherwise de-identified, each
    re-checked as a new part (what Orthanc receives is what was de-identified and checked). A refused instance is
    a 422 naming its part and why."""
    cohort = session.get(Cohort, cohort_id)
    if cohort is None:
        raise NotFound(f"no cohort {cohort_id}")
    policy = policy_of(cohort)
    if policy.identified:
        return instances
    key = cohort_key(get_settings(), cohort_id)
    datasets = [pydicom.dcmread(io.BytesIO(instance.encoded)) for instance in instances]
    keep = kept_uids(session, orthanc, cohort_id, datasets)
    out: list[CheckedInstance] = []
    for index, (instance, dataset) in enumerate(zip(instances, datasets, strict=True), 1):
        pseudonym = _stored_patient(orthanc, instance.study_uid) if instance.study_uid in keep else None
        try:
            result = deidentify(dataset, policy, key, pseudonym=pseudonym or None, keep_uids=keep)
        except DeidentificationRefused as refused:
            raise DeidentificationRefused(refused.reason, f"part {index}: {refused}") from refused
        out.append(_checked(result.dataset, index))
    return out
