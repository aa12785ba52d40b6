"""Segmentations brought in or made by hand: import of earlier work, slice interpolation, deletion and review.

A SEG belongs to its source series' cohorts. Importing and interpolating need a role in one of them; deleting
needs to be the SEG's owner (the account that stored it, ``created_by``) or an admin of one of them; reviewing is
for their members. A series or SEG outside the caller's cohorts does not exist for them (404), a missing right
is a 403. Each action is journaled in the transaction that records it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from highdicom.seg import SegmentAlgorithmTypeValues
from sqlalchemy import select
from sqlalchemy.orm import Session

from awesomme.analysis.interpolation import interpolate_slices
from awesomme.core import audit
from awesomme.core.config import get_settings
from awesomme.core.db import session_scope
from awesomme.core.errors import Forbidden, InvalidInput, NotFound
from awesomme.core.visibility import Principal, cohorts_of_series, current_visibility
from awesomme.dicom.label_geometry import GeometryTolerance
from awesomme.dicom.seg import encode_seg, seg_content
from awesomme.dicom.segmentation_files import SourceFile, format_of, read_binary_seg, read_segmentation_file
from awesomme.dicom.volumes import grid_from_datasets
from awesomme.models import (
    Segmentation,
    SegmentationOperation,
    SegmentationOrigin,
    SegmentationReview,
    SegmentationRole,
)
from awesomme.orthanc.client import SeriesState
from awesomme.orthanc.datastore import OrthancDatastore
from awesomme.services.seg_store import cohort_text

__all__ = [
    "REVIEW_STATUSES",
    "ImportRequest",
    "SaveRequest",
    "delete_segmentation",
    "import_segmentation",
    "interpolate_segmentation",
    "review_segmentation",
    "reviews_and_owners",
    "save_segmentation",
]

logger = logging.getLogger(__name__)
REVIEW_STATUSES = ("accepted", "rejected")
IMPORT_TAG = "imported"
SAVE_TAG = "final"  # a label saved from the viewer is a person's final work, as MONAI Label's save label makes it
INTERPOLATION_ALGORITHM = "AWESOMME slice interpolation"
# The tag of a model's output with its gaps filled: not a final label (training reads final labels only).
INTERPOLATED_TAG = "interpolated"


@dataclass(frozen=True)
class SaveRequest:
    """A SEG a viewer wrote (OHIF's bitmap SEG), to be stored as the caller's label of ``series_uid``."""

    series_uid: str
    filename: str
    based_on: str = ""  # the model's SEG the edit started from: a prediction of this very series
    description: str = ""


@dataclass(frozen=True)
class ImportRequest:
    series_uid: str
    filename: str
    description: str = ""
    segment_label: str = ""
    label_names: Mapping[str, str] | None = None  # file value, or SEG/RTSTRUCT name -> segment label
    algorithm_type: str = SegmentAlgorithmTypeValues.MANUAL.value  # as the API names it
    algorithm_name: str = ""
    reader: str = ""  # who drew it (display only): its Content Creator's Name; the importer, if empty
    file_format: str | None = None
    tag: str = IMPORT_TAG


class _PhaseClock:
    """Seconds spent in each phase of a request, for the log and the answer."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = round(now - self._last, 3)
        self._last = now


# -- who may act ------------------------------------------------------------------------------------------------
def _visible_state(datastore: OrthancDatastore, series_uid: str) -> SeriesState:
    return datastore.image_state(series_uid)  # 404 unless the series is an image in the caller's cohorts


def _cohorts_with_role(session: Session, principal: Principal, state: SeriesState) -> set[int]:
    """The series' cohorts where the caller has a role (every one of them, for platform admins)."""
    cohorts = cohorts_of_series(session, state.study_uid, state.series_uid)
    return {cohort for cohort in cohorts if principal.role_in(cohort)}


def _require_role(session: Session, principal: Principal, state: SeriesState) -> set[int]:
    cohorts = _cohorts_with_role(session, principal, state)
    if not cohorts and not principal.platform_admin:
        raise Forbidden(f"you have no role in a cohort of series {state.series_uid}")
    return cohorts


def _visible_record(session: Session, seg_uid: str) -> Segmentation:
    record = session.get(Segmentation, seg_uid)
    if record is None or not current_visibility.get().sees_series(record.study_uid, record.source_series_uid):
        raise NotFound(f"no segmentation {seg_uid} in your cohorts")
    return record


# -- storing ----------------------------------------------------------------------------------------------------
def _algorithm_type(name: str) -> SegmentAlgorithmTypeValues:
    """The Segment Algorithm Type the caller names; another name is refused."""
    try:
        return SegmentAlgorithmTypeValues(name)
    except ValueError:
        names = ", ".join(kind.value for kind in SegmentAlgorithmTypeValues)
        raise InvalidInput(f"algorithm_type must be one of {names}") from None


def _segment_names(file_names: Mapping[int, str], values: list[int], request: ImportRequest) -> dict[int, str]:
    """A label for each value: the caller's map (by value or by the file's own name), ``segment_label`` for a
    single segment, the file's own name, or "Segment N"."""
    given = dict(request.label_names or {})
    names = {}
    for value in values:
        own = file_names.get(value, "")
        single = request.segment_label if len(values) == 1 else ""
        name = given.get(str(value)) or (given.get(own) if own else "") or single or own
        names[value] = (name or f"Segment {value}")[:64]
    return names


def _reader(name: str) -> str | None:
    """A declared reader, as a DICOM person name may hold it (no backslash, no control character); None if blank."""
    name = name.strip()
    if any(char == "\\" or not char.isprintable() for char in name):
        raise InvalidInput("reader may hold no backslash or control character")
    return name or None


def import_segmentation(
    datastore: OrthancDatastore, principal: Principal, request: ImportRequest, data: bytes
) -> dict[str, Any]:
    """Read the upload onto the series' grid and store it as a SEG of that series."""
    algorithm_type = _algorithm_type(request.algorithm_type)
    if not data:
        raise InvalidInput("the file is empty")
    clock = _PhaseClock()
    state = _visible_state(datastore, request.series_uid)
    with session_scope() as session:
        _require_role(session, principal, state)
    source = datastore.source_metadata(state)
    clock.lap("series")
    grid = grid_from_datasets(source)
    claimed = format_of(request.filename, request.file_format)
    tolerance = GeometryTolerance.from_settings(get_settings())
    only = set(request.label_names or {}) or None  # for SEG and RTSTRUCT: which segments or ROIs to take
    found, labels = read_segmentation_file(data, claimed, source, grid, tolerance, only)
    clock.lap("read")
    values = [int(v) for v in np.unique(labels.label_map) if v != 0]
    content = seg_content(labels.label_map, _segment_names(labels.names, values, request), labels.types, labels.colours)
    reader = _reader(request.reader)
    author = reader or audit.acting_user()  # the importer is the login, never a form field
    automatic = algorithm_type != SegmentAlgorithmTypeValues.MANUAL
    algorithm = (request.algorithm_name or "unnamed algorithm") if automatic else None
    description = request.description or f"Imported {found}"
    seg = encode_seg(
        source,
        content,
        algorithm_type=algorithm_type,
        series_description=description,
        content_description=f"imported from {found} {request.filename}"[:64],
        author=author,
        algorithm_name=algorithm,
        algorithm_version="unknown" if automatic else "",
    )
    record = Segmentation(
        source_series_uid=state.series_uid,
        study_uid=state.study_uid,
        role=SegmentationRole.LABEL,
        tag=request.tag,
        author=author,
        reader=reader,
        algorithm_type=algorithm_type.value,
        model_name=algorithm,
        description=description[:256],
        segments=content.summary(grid.voxel_volume_ml),
    )
    clock.lap("build")
    seg_uid = datastore.seg_store.store(
        seg,
        record,
        SegmentationOperation.IMPORT,
        params={"format": found, "bytes": len(data)},
        source_file=SourceFile(found, request.filename, hashlib.sha256(data).hexdigest()),
    )
    clock.lap("store")
    logger.info("Imported %s as SEG %s in %s", found, seg_uid, clock.phases)
    return {
        "seg_uid": seg_uid,
        "series_uid": state.series_uid,
        "format": found,
        "segments": record.segments,
        "seconds": clock.phases,
    }


# -- saving a viewer's SEG --------------------------------------------------------------------------------------
def _prediction_of(session: Session, seg_uid: str, series_uid: str) -> Segmentation:
    """``seg_uid`` as the prediction of ``series_uid`` an edit started from; anything else is refused (422)."""
    record = session.get(Segmentation, seg_uid)
    if record is None or record.role != SegmentationRole.PREDICTION or record.source_series_uid != series_uid:
        raise InvalidInput(f"based_on {seg_uid} is not a prediction of series {series_uid}")
    session.expunge(record)
    return record


def save_segmentation(
    datastore: OrthancDatastore, principal: Principal, request: SaveRequest, data: bytes
) -> dict[str, Any]:
    """Store a viewer's BINARY SEG as a new label of the series, re-written by the platform's SEG writer: drawn by
    the logged-in user, SEMIAUTOMATIC when it corrects a prediction (``based_on``), MANUAL otherwise; its segments
    keep their names, coded types and colours. Every frame is checked against its source instance first."""
    if not data:
        raise InvalidInput("the file is empty")
    if any(char == "\\" or not char.isprintable() for char in request.description):
        raise InvalidInput("description may hold no backslash or control character")
    clock = _PhaseClock()
    state = _visible_state(datastore, request.series_uid)
    with session_scope() as session:
        _require_role(session, principal, state)
        corrected = _prediction_of(session, request.based_on, state.series_uid) if request.based_on else None
    source = datastore.source_metadata(state)
    clock.lap("series")
    grid = grid_from_datasets(source)
    labels = read_binary_seg(data, source, GeometryTolerance.from_settings(get_settings()))
    clock.lap("read")
    content = seg_content(labels.label_map, labels.names, labels.types, labels.colours)
    author = audit.acting_user()  # the login: a client's author or reader field is never read here
    if corrected is not None:
        algorithm_type, note = SegmentAlgorithmTypeValues.SEMIAUTOMATIC, f" correcting {corrected.model_name}"
    else:
        algorithm_type, note = SegmentAlgorithmTypeValues.MANUAL, ""
    description = request.description or f"Label ({SAVE_TAG})"
    demo = bool(corrected and corrected.demo_weights)  # a correction of a demo model's output stays marked
    seg = encode_seg(
        source,
        content,
        algorithm_type=algorithm_type,
        series_description=description,
        content_description=f"saved from the viewer{note}",
        author=author,
        algorithm_name=corrected.model_name if corrected else None,
        algorithm_version=(corrected.model_version or "") if corrected else "",
        demo=demo,
    )
    record = Segmentation(
        source_series_uid=state.series_uid,
        study_uid=state.study_uid,
        role=SegmentationRole.LABEL,
        tag=SAVE_TAG,
        author=author,
        algorithm_type=algorithm_type.value,
        model_name=corrected.model_name if corrected else None,
        model_version=corrected.model_version if corrected else None,
        description=description[:256],
        segments=content.summary(grid.voxel_volume_ml),
        derived_from=corrected.seg_series_uid if corrected else None,
        demo_weights=demo,
    )
    clock.lap("build")
    seg_uid = datastore.seg_store.store(
        seg,
        record,
        SegmentationOperation.LABEL,
        params={"format": "dicom-seg", "bytes": len(data), "from": "viewer"},
        source_file=SourceFile("dicom-seg", request.filename or "segmentation.dcm", hashlib.sha256(data).hexdigest()),
    )
    clock.lap("store")
    logger.info("Saved the viewer's SEG as %s in %s", seg_uid, clock.phases)
    return {
        "seg_uid": seg_uid,
        "series_uid": state.series_uid,
        "format": "dicom-seg",
        "segments": record.segments,
        "algorithm_type": record.algorithm_type,
        "author": author,
        "derived_from": record.derived_from,
        "seconds": clock.phases,
    }


# -- interpolation ----------------------------------------------------------------------------------------------
def interpolate_segmentation(
    datastore: OrthancDatastore, principal: Principal, series_uid: str, seg_uid: str, segment_number: int
) -> dict[str, Any]:
    """A new SEG where the gaps between segmented slices of one segment are filled (SEMIAUTOMATIC)."""
    state = _visible_state(datastore, series_uid)
    with session_scope() as session:
        _require_role(session, principal, state)
        record = _visible_record(session, seg_uid)
    if record.source_series_uid != series_uid:
        raise InvalidInput(f"segmentation {seg_uid} is not one of series {series_uid}")
    source = datastore.source_metadata(state)
    grid = grid_from_datasets(source)
    stored = datastore.seg_content(record)
    label_map, names = stored.label_map, stored.names
    mask = label_map == segment_number
    if segment_number not in names or not mask.any():
        raise InvalidInput(f"segment {segment_number} of {seg_uid} is missing or empty")
    column_mm, row_mm, _ = grid.spacing
    filled = interpolate_slices(mask, (row_mm, column_mm))
    added = filled & (label_map == 0)  # other segments keep their voxels
    if not added.any():
        raise InvalidInput(f"segment {segment_number} has no gap between segmented slices: nothing to interpolate")
    result = label_map.copy()
    result[added] = segment_number
    label = names[segment_number]
    content = seg_content(result, names)
    drawer = audit.acting_user()  # who asked for the filling drew the new SEG, whoever drew its source
    new_seg = encode_seg(
        source,
        content,
        algorithm_type=SegmentAlgorithmTypeValues.SEMIAUTOMATIC,
        series_description=f"Interpolated ({label})",
        content_description=f"segment {segment_number} interpolated from {seg_uid}",
        author=drawer,
        algorithm_name=INTERPOLATION_ALGORITHM,
        demo=record.demo_weights,  # an interpolation of a demo model's output stays marked
    )
    new_record = Segmentation(
        source_series_uid=series_uid,
        study_uid=state.study_uid,
        role=SegmentationRole.LABEL,
        # a person's label keeps its tag; a model's output filled in is no final label, never training data
        tag=record.tag if record.role == SegmentationRole.LABEL else INTERPOLATED_TAG,
        demo_weights=record.demo_weights,
        author=drawer,
        algorithm_type=SegmentAlgorithmTypeValues.SEMIAUTOMATIC.value,
        model_name=INTERPOLATION_ALGORITHM,
        description=f"segment {segment_number} ({label}) interpolated"[:256],
        segments=content.summary(grid.voxel_volume_ml),
        derived_from=seg_uid,
    )
    new_uid = datastore.seg_store.store(
        new_seg,
        new_record,
        SegmentationOperation.INTERPOLATION,
        params={"from": seg_uid, "segment": segment_number, "voxels": int(added.sum())},
    )
    return {
        "seg_uid": new_uid,
        "derived_from": seg_uid,
        "segment_number": segment_number,
        "added_voxels": int(added.sum()),
        "segments": new_record.segments,
    }


# -- deletion and review ----------------------------------------------------------------------------------------
def _owner(session: Session, record: Segmentation) -> str | None:
    """The account that stored the SEG (never a declared reader or a client's author field)."""
    if record.created_by:
        return record.created_by
    origin = session.get(SegmentationOrigin, record.seg_series_uid)
    return origin.created_by if origin is not None else None


def delete_segmentation(datastore: OrthancDatastore, principal: Principal, seg_uid: str) -> None:
    """Remove a SEG from Orthanc and the platform (its owner, or an admin of one of its cohorts)."""
    with session_scope() as session:
        record = _visible_record(session, seg_uid)
        cohorts = cohorts_of_series(session, record.study_uid, record.source_series_uid)
        owner = _owner(session, record)
    administers = principal.platform_admin or any(principal.administers(cohort) for cohort in cohorts)
    if not administers and principal.username != owner:
        raise Forbidden("only the segmentation's author or an admin of its cohort may delete it")
    datastore.seg_store.remove(record, params={"owner": owner or ""})


def review_segmentation(principal: Principal, seg_uid: str, status: str, comment: str) -> dict[str, Any]:
    if status not in REVIEW_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(REVIEW_STATUSES)}")
    with session_scope() as session:
        record = _visible_record(session, seg_uid)
        cohorts = {
            cohort
            for cohort in cohorts_of_series(session, record.study_uid, record.source_series_uid)
            if principal.role_in(cohort)
        }
        if not cohorts and not principal.platform_admin:
            raise Forbidden(f"you have no role in a cohort of segmentation {seg_uid}")
        review = SegmentationReview(seg_series_uid=seg_uid, reviewer=principal.username, status=status, comment=comment)
        session.add(review)
        session.flush()
        audit.record(
            session,
            "segmentation.review",
            target=seg_uid,
            cohort=cohort_text(cohorts),
            params={"status": status, "review_id": review.id},
        )
        return _review_json(review)


def _review_json(review: SegmentationReview) -> dict[str, Any]:
    return {
        "id": review.id,
        "reviewer": review.reviewer,
        "status": review.status,
        "comment": review.comment,
        "created_at": review.created_at.isoformat(),
    }


def reviews_and_owners(seg_uids: list[str]) -> tuple[dict[str, list[dict[str, Any]]], dict[str, SegmentationOrigin]]:
    """The reviews of each SEG (oldest first) and the origin of those made here, for listings."""
    reviews: dict[str, list[dict[str, Any]]] = {uid: [] for uid in seg_uids}
    if not seg_uids:
        return reviews, {}
    with session_scope() as session:
        rows = session.scalars(
            select(SegmentationReview)
            .where(SegmentationReview.seg_series_uid.in_(seg_uids))
            .order_by(SegmentationReview.created_at, SegmentationReview.id)
        )
        for review in rows:
            reviews[review.seg_series_uid].append(_review_json(review))
        origins = {
            origin.seg_series_uid: origin
            for origin in session.scalars(
                select(SegmentationOrigin).where(SegmentationOrigin.seg_series_uid.in_(seg_uids))
            )
        }
        session.expunge_all()
    return reviews, origins
