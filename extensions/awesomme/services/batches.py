"""Cohort batches: what a request selects (the dry run), the batch and its items, their progress, cancel and resume.

A batch is one kind of work over the series of one cohort that its selection chose: a segmentation model, a
radiomics preset on one SEG per series, or a classification model on one feature set per series. The plan sorts
every image series of the cohort, per patient, into matched (it runs), unmatched (the selection or the kind's input
leaves it out, with the reason) and ambiguous (more than one SEG or feature set would fit: nothing runs there).
Only cohort admins of the cohort start batches, and a model must be bound to the cohort. The items' states are
written by the runner (``services/batch_runner.py``) alone; this module creates batches and marks them cancelled
or pending again, and the runner hears of it through ``wake``.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from awesomme.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from awesomme.core.visibility import Principal
from awesomme.inference.registry import get_registry
from awesomme.models import Batch, BatchItem, CohortItem, FeatureSet, Segmentation
from awesomme.orthanc.client import IMAGE_MODALITIES, OrthancClient
from awesomme.services import radiomics
from awesomme.services.cohorts import bound_cohorts, cohort_for_admin

__all__ = [
    "KINDS",
    "BatchRequest",
    "SegChoice",
    "Selection",
    "SeriesInfo",
    "batch_json",
    "cancel",
    "create",
    "item_json",
    "items_of",
    "list_batches",
    "output_uid",
    "plan",
    "resume",
    "visible_batch",
    "wake",
    "wake_event",
]

KINDS = ("segmentation", "radiomics", "classification")
Kind = Literal["segmentation", "radiomics", "classification"]
ITEM_STATES = ("pending", "running", "done", "failed")
BATCH_STATES = ("pending", "running", "done", "cancelled")
# Output UIDs of batch items: 2.25 (UUID-derived) UIDs from this namespace, the batch's id and the item's key.
_NAMESPACE = uuid.UUID("6f1c7d1e-5a4b-4f0e-9d62-0b1a6c5e2f31")
_MAX_REGEX = 200

wake_event = threading.Event()


def wake() -> None:
    """Tell the runner that a batch was created, cancelled or resumed (it also looks every few seconds)."""
    wake_event.set()


def output_uid(batch_id: int, item_key: str, what: str) -> str:
    """The UID of ``what`` (``series``, ``instance``) stored for an item: the same for every run of that item, so a
    re-run finds what an earlier run stored instead of storing it twice."""
    return f"2.25.{uuid.uuid5(_NAMESPACE, f'{batch_id}/{item_key}/{what}').int}"


# -- the request ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Selection:
    modality: str | None = None
    series_number: int | None = None
    description: str | None = None  # a regular expression, searched in the SeriesDescription

    def pattern(self) -> re.Pattern[str] | None:
        if not self.description:
            return None
        if len(self.description) > _MAX_REGEX:
            raise InvalidInput(f"selection.description: a regular expression of at most {_MAX_REGEX} characters")
        try:
            return re.compile(self.description)
        except re.error as error:
            raise InvalidInput(f"selection.description is not a regular expression: {error}") from None


@dataclass(frozen=True)
class SegChoice:
    """Which SEG of a series a radiomics batch reads: every field given must match."""

    description: str | None = None
    tag: str | None = None
    author: str | None = None

    def given(self) -> bool:
        return any(value is not None for value in (self.description, self.tag, self.author))

    def fits(self, record: Segmentation) -> bool:
        return (
            (self.description is None or record.description == self.description)
            and (self.tag is None or record.tag == self.tag)
            and (self.author is None or self.author in (record.created_by, record.author))
        )


@dataclass(frozen=True)
class BatchRequest:
    cohort: int
    kind: Kind
    selection: Selection = field(default_factory=Selection)
    model: str | None = None
    preset: str | None = None
    seg: SegChoice = field(default_factory=SegChoice)
    input_tag: str | None = None
    segment_number: int = 1
    description: str = ""
    tag: str = ""


@dataclass(frozen=True)
class SeriesInfo:
    study_uid: str
    series_uid: str
    patient: str
    modality: str
    series_number: int | None
    description: str

    def as_json(self) -> dict[str, Any]:
        return {
            "study_uid": self.study_uid,
            "series_uid": self.series_uid,
            "modality": self.modality,
            "series_number": self.series_number,
            "description": self.description,
        }


# -- the plan (the dry run, and what a batch runs) ----------------------------------------------------------------
def _text(dataset: Any, keyword: str) -> str:
    return str(getattr(dataset, keyword, "") or "")


def cohort_series(session: Session, client: OrthancClient, cohort_id: int) -> list[SeriesInfo]:
    """The image series (CT, MR) of a cohort, as Orthanc describes them: its whole studies and its single series."""
    items = list(session.scalars(select(CohortItem).where(CohortItem.cohort_id == cohort_id)))
    studies = sorted({item.study_uid for item in items if not item.series_uid})
    single = {item.series_uid for item in items if item.series_uid} - set()
    wanted = ["StudyInstanceUID", "SeriesInstanceUID", "PatientID", "Modality", "SeriesNumber", "SeriesDescription"]
    found: dict[str, SeriesInfo] = {}
    hits: list[dict[str, Any]] = []
    for study_uid in studies:
        hits += client.dicomweb.search_for_series(study_uid, fields=wanted)
    for item in items:
        if item.series_uid and item.study_uid not in studies:
            filters = {"SeriesInstanceUID": item.series_uid}
            hits += client.dicomweb.search_for_series(item.study_uid, search_filters=filters, fields=wanted)
    from pydicom import Dataset  # the QIDO answer is DICOM JSON

    for hit in hits:
        dataset = Dataset.from_json(hit)
        modality = _text(dataset, "Modality")
        series_uid = _text(dataset, "SeriesInstanceUID")
        if modality not in IMAGE_MODALITIES or not series_uid:
            continue
        if dataset.StudyInstanceUID not in studies and series_uid not in single:
            continue
        number = getattr(dataset, "SeriesNumber", None)
        found[series_uid] = SeriesInfo(
            study_uid=_text(dataset, "StudyInstanceUID"),
            series_uid=series_uid,
            patient=_text(dataset, "PatientID"),
            modality=modality,
            series_number=int(number) if number not in (None, "") else None,
            description=_text(dataset, "SeriesDescription"),
        )
    return sorted(found.values(), key=lambda info: (info.patient, info.study_uid, info.series_number or 0))


@dataclass
class Plan:
    kind: str
    patients: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    runs: list[tuple[SeriesInfo, dict[str, Any]]] = field(default_factory=list)  # (series, its inputs)

    def put(self, info: SeriesInfo, verdict: str, **details: Any) -> None:
        patient = self.patients.setdefault(info.patient, {"matched": [], "unmatched": [], "ambiguous": []})
        patient[verdict].append({**info.as_json(), **details})

    def as_json(self) -> dict[str, Any]:
        patients = [{"patient": name, **verdicts} for name, verdicts in sorted(self.patients.items())]
        counts = {verdict: sum(len(p[verdict]) for p in patients) for verdict in ("matched", "unmatched", "ambiguous")}
        return {"kind": self.kind, "patients": patients, "counts": counts}


def _why_not_selected(info: SeriesInfo, selection: Selection, pattern: re.Pattern[str] | None) -> str | None:
    if selection.modality is not None and info.modality != selection.modality:
        return f"modality {info.modality}, the selection wants {selection.modality}"
    if selection.series_number is not None and info.series_number != selection.series_number:
        return f"series number {info.series_number}, the selection wants {selection.series_number}"
    if pattern is not None and not pattern.search(info.description):
        return f"description {info.description!r} does not match {pattern.pattern!r}"
    return None


def check_request(session: Session, principal: Principal, request: BatchRequest) -> dict[str, Any]:
    """The cohort (its admins only), the kind's model or preset (bound, usable): what the batch stores as its spec."""
    cohort_for_admin(session, principal, request.cohort)
    spec: dict[str, Any] = {"segment_number": request.segment_number}
    if request.kind == "segmentation":
        if not request.model:
            raise InvalidInput("a segmentation batch names its model")
        loaded = get_registry().models.get(request.model)
        if loaded is None:
            raise NotFound(f"no segmentation model {request.model[:64]}")
        if request.cohort not in bound_cohorts(session, loaded.config):
            raise Forbidden(f"model {loaded.config.name} is not bound to cohort {request.cohort}")
        spec.update(model=loaded.config.name, model_version=loaded.config.version, modality=loaded.config.modality)
    elif request.kind == "radiomics":
        if not request.preset:
            raise InvalidInput("a radiomics batch names its preset")
        if not request.seg.given():
            raise InvalidInput("a radiomics batch chooses each series' SEG by seg.description, seg.tag or seg.author")
        spec.update(preset=radiomics.resolve_preset(session, principal, request.preset).ref)
        spec.update(seg={"description": request.seg.description, "tag": request.seg.tag, "author": request.seg.author})
    elif request.kind == "classification":
        if not request.model or request.input_tag is None:
            raise InvalidInput("a classification batch names its model and the input_tag of its feature sets")
        classifier = get_registry().classifiers.get(request.model)
        if classifier is None:
            raise NotFound(f"no classification model {request.model[:64]}")
        if request.cohort not in bound_cohorts(session, classifier.config):
            raise Forbidden(f"model {classifier.config.name} is not bound to cohort {request.cohort}")
        spec.update(model=classifier.config.name, model_version=classifier.config.version, input_tag=request.input_tag)
    else:  # the schema allows only the three kinds
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}")
    return spec


def plan(session: Session, client: OrthancClient, request: BatchRequest, spec: dict[str, Any]) -> Plan:
    """Every image series of the cohort, per patient: matched, unmatched (with the reason) or ambiguous."""
    pattern = request.selection.pattern()
    result = Plan(request.kind)
    for info in cohort_series(session, client, request.cohort):
        reason = _why_not_selected(info, request.selection, pattern)
        if reason is not None:
            result.put(info, "unmatched", reason=reason)
            continue
        if request.kind == "segmentation":
            if info.modality != spec["modality"]:
                result.put(info, "unmatched", reason=f"model {spec['model']} runs on {spec['modality']}")
                continue
            result.put(info, "matched")
            result.runs.append((info, {}))
        elif request.kind == "radiomics":
            _plan_radiomics(session, result, info, request.seg)
        else:
            _plan_classification(session, result, info, str(spec["input_tag"]))
    return result


def _plan_radiomics(session: Session, result: Plan, info: SeriesInfo, choice: SegChoice) -> None:
    records = session.scalars(
        select(Segmentation)
        .where(Segmentation.source_series_uid == info.series_uid)
        .order_by(Segmentation.created_at, Segmentation.seg_series_uid)
    )
    candidates = [record for record in records if choice.fits(record)]
    if not candidates:
        result.put(info, "unmatched", reason="no SEG of this series fits the seg choice")
    elif len(candidates) > 1:
        result.put(info, "ambiguous", candidates=[_seg_json(record) for record in candidates])
    else:
        result.put(info, "matched", seg_uid=candidates[0].seg_series_uid)
        result.runs.append((info, {"seg_uid": candidates[0].seg_series_uid}))


def _seg_json(record: Segmentation) -> dict[str, Any]:
    return {
        "seg_uid": record.seg_series_uid,
        "description": record.description,
        "tag": record.tag,
        "author": record.created_by,
    }


def _plan_classification(session: Session, result: Plan, info: SeriesInfo, input_tag: str) -> None:
    rows = list(
        session.scalars(select(FeatureSet).where(FeatureSet.series_uid == info.series_uid, FeatureSet.tag == input_tag))
    )
    if not rows:
        result.put(info, "unmatched", reason=f"no feature set tagged {input_tag!r}")
    elif len(rows) > 1:
        result.put(info, "ambiguous", candidates=[{"feature_set_id": row.id, "preset": row.preset} for row in rows])
    else:
        result.put(info, "matched", feature_set_id=rows[0].id)
        result.runs.append((info, {"feature_set_id": rows[0].id}))


def create(session: Session, principal: Principal, request: BatchRequest, spec: dict[str, Any], chosen: Plan) -> Batch:
    """The batch and one pending item per matched series (none matched: nothing to run, a 422)."""
    if not chosen.runs:
        raise InvalidInput("the selection matches no series: nothing to run (try dry_run to see why)")
    batch = Batch(
        cohort_id=request.cohort,
        kind=request.kind,
        spec={**spec, "selection": _selection_json(request.selection)},
        description=request.description,
        tag=request.tag,
        status="pending",
        created_by=principal.username,
    )
    session.add(batch)
    session.flush()
    for info, inputs in chosen.runs:
        session.add(
            BatchItem(
                batch_id=batch.id,
                item_key=info.series_uid,
                study_uid=info.study_uid,
                patient=info.patient[:64],
                status="pending",
                inputs=inputs,
            )
        )
    session.flush()
    return batch


def _selection_json(selection: Selection) -> dict[str, Any]:
    return {
        "modality": selection.modality,
        "series_number": selection.series_number,
        "description": selection.description,
    }


# -- reading, cancel, resume -------------------------------------------------------------------------------------
def visible_batch(session: Session, principal: Principal, batch_id: int) -> Batch:
    """A batch of a cohort the caller administers (others: 404, members of its cohort: 403)."""
    batch = session.get(Batch, batch_id)
    if batch is None or principal.role_in(batch.cohort_id) is None:
        raise NotFound(f"no batch {batch_id}")
    if not principal.administers(batch.cohort_id):
        raise Forbidden(f"only an admin of the batch's cohort may see batch {batch_id}")
    return batch


def counts_of(session: Session, batch_id: int) -> dict[str, int]:
    rows = session.execute(
        select(BatchItem.status, func.count()).where(BatchItem.batch_id == batch_id).group_by(BatchItem.status)
    )
    counts = dict.fromkeys(ITEM_STATES, 0)
    for status, count in rows:
        counts[str(status)] = int(count)
    return counts


def _eta_s(session: Session, batch: Batch, counts: dict[str, int]) -> float | None:
    """Seconds left at the pace of the items done so far (None until one is done, 0 once nothing is left)."""
    left = counts["pending"] + counts["running"]
    if not left or batch.status == "cancelled":
        return 0.0 if batch.status != "cancelled" else None
    finished = counts["done"] + counts["failed"]
    if not finished or batch.started_at is None:
        return None
    started = batch.started_at.replace(tzinfo=UTC) if batch.started_at.tzinfo is None else batch.started_at
    elapsed = (datetime.now(UTC) - started).total_seconds()
    return round(elapsed / finished * left, 1)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).isoformat()


def batch_json(session: Session, batch: Batch) -> dict[str, Any]:
    counts = counts_of(session, batch.id)
    return {
        "id": batch.id,
        "cohort": batch.cohort_id,
        "kind": batch.kind,
        "status": batch.status,
        "description": batch.description,
        "tag": batch.tag,
        "spec": batch.spec,
        "counts": counts,
        "total": sum(counts.values()),
        "created_by": batch.created_by,
        "created": _iso(batch.created_at),
        "started": _iso(batch.started_at),
        "finished": _iso(batch.finished_at),
        "eta_s": _eta_s(session, batch, counts),
    }


def list_batches(session: Session, principal: Principal, cohort_id: int) -> list[Batch]:
    cohort_for_admin(session, principal, cohort_id)
    return list(session.scalars(select(Batch).where(Batch.cohort_id == cohort_id).order_by(Batch.id)))


def items_of(session: Session, batch: Batch, status: str | None) -> list[BatchItem]:
    query = select(BatchItem).where(BatchItem.batch_id == batch.id)
    if status is not None:
        query = query.where(BatchItem.status == status)
    return list(session.scalars(query.order_by(BatchItem.id)))


def item_json(item: BatchItem) -> dict[str, Any]:
    return {
        "series_uid": item.item_key,
        "study_uid": item.study_uid,
        "patient": item.patient,
        "status": item.status,
        "attempts": item.attempts,
        "inputs": item.inputs,
        "output": item.output or None,
        "error": item.error or None,
        "duration_s": item.duration_s,
        "updated": _iso(item.updated_at),
    }


def cancel(session: Session, batch: Batch) -> Batch:
    """No new item starts; items already running finish and are kept. A finished batch cannot be cancelled."""
    if batch.status == "done":
        raise Conflict(f"batch {batch.id} is done: nothing to cancel")
    batch.status = "cancelled"
    batch.finished_at = datetime.now(UTC)
    session.flush()
    return batch


def resume(session: Session, batch: Batch) -> Batch:
    """A cancelled batch goes on, and the failed items of any batch run again (the runner re-queues them when it
    takes the batch up; their errors are kept until they do)."""
    counts = counts_of(session, batch.id)
    if counts["pending"] + counts["running"] + counts["failed"] == 0:
        raise Conflict(f"batch {batch.id} has nothing left to run")
    if batch.status == "running":
        raise Conflict(f"batch {batch.id} is running")
    batch.status = "pending"
    batch.finished_at = None
    session.flush()
    return batch


def patients_of(chosen: Plan) -> dict[str, list[str]]:
    """Matched series per patient (for logs)."""
    grouped: dict[str, list[str]] = defaultdict(list)
    for info, _inputs in chosen.runs:
        grouped[info.patient].append(info.series_uid)
    return dict(grouped)
