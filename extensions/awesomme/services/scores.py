"""Experts' scores of studies, series and derived objects: who may give them, cohort-filtered listings, summaries.

A score belongs to its target's cohorts (a SEG, feature set or prediction: those of its source series), like every
derived object. Its ``cohort_id`` is set when it is filed under one cohort: scored with a cohort's own type, or on
a prediction made from an uploaded CSV (which belongs to the cohort named with it).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from awesomme.analysis.score_statistics import distribution
from awesomme.core.db import row_id
from awesomme.core.errors import InvalidInput, NotFound
from awesomme.core.visibility import Principal, Visibility, cohorts_of_series
from awesomme.models import CohortItem, FeatureSet, Prediction, Score, ScoreType, Segmentation
from awesomme.orthanc.client import OrthancClient
from awesomme.orthanc.visible import visible_series_state
from awesomme.services.score_types import (
    by_reference,
    check_value,
    list_score_types,
    score_type_for_cohort,
    usable_type,
)

__all__ = [
    "TARGET_KINDS",
    "NewScore",
    "Target",
    "cohort_scores",
    "create_score",
    "list_scores",
    "resolve_target",
    "score_json",
    "sees_score",
    "summaries",
]

TARGET_KINDS = ("study", "series", "seg", "feature_set", "prediction")


# -- targets ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """Where a scored object lies: its study and series (empty for a whole study), its cohorts."""

    study_uid: str
    series_uid: str
    cohorts: set[int]
    own_cohort: int | None = None  # a prediction from an uploaded CSV: the cohort it was filed under


def _whole_study_cohorts(session: Session, study_uid: str) -> set[int]:
    query = select(CohortItem.cohort_id).where(CohortItem.study_uid == study_uid, CohortItem.series_uid == "")
    return set(session.scalars(query))


def _row_id(uid: str, kind: str) -> int:
    number = row_id(uid)
    if number is None:
        raise NotFound(f"no {kind} {uid} in your cohorts")
    return number


def _series_target(session: Session, visibility: Visibility, kind: str, uid: str, study: str, series: str) -> Target:
    if not visibility.sees_series(study, series):
        raise NotFound(f"no {kind} {uid} in your cohorts")
    return Target(study, series, cohorts_of_series(session, study, series))


def resolve_target(
    session: Session, orthanc: OrthancClient, principal: Principal, visibility: Visibility, kind: str, uid: str
) -> Target:
    """The scored object, if the caller may see it (404 otherwise: another cohort's data does not exist)."""
    if kind == "study":
        if not orthanc.study_exists(uid) or not visibility.sees_whole_study(uid):
            raise NotFound(f"no study {uid} in your cohorts")
        return Target(uid, "", _whole_study_cohorts(session, uid))
    if kind == "series":
        state = visible_series_state(orthanc, visibility, uid)  # absent and not yours: the same 404
        if state.modality == "SEG":
            raise InvalidInput(f"{uid} is a SEG: score it with target_kind seg")
        return _series_target(session, visibility, kind, uid, state.study_uid, uid)
    if kind == "seg":
        record = session.get(Segmentation, uid)
        if record is None:
            raise NotFound(f"no seg {uid} in your cohorts")
        return _series_target(session, visibility, kind, uid, record.study_uid, record.source_series_uid)
    if kind == "feature_set":
        feature_set = session.get(FeatureSet, _row_id(uid, kind))
        if feature_set is None:
            raise NotFound(f"no feature_set {uid} in your cohorts")
        return _series_target(session, visibility, kind, uid, feature_set.study_uid, feature_set.series_uid)
    if kind == "prediction":
        prediction = session.get(Prediction, _row_id(uid, kind))
        if prediction is None:
            raise NotFound(f"no prediction {uid} in your cohorts")
        if prediction.series_uid and prediction.study_uid:
            return _series_target(session, visibility, kind, uid, prediction.study_uid, prediction.series_uid)
        if prediction.cohort_id is None or principal.role_in(prediction.cohort_id) is None:
            raise NotFound(f"no prediction {uid} in your cohorts")
        return Target("", "", {prediction.cohort_id}, own_cohort=prediction.cohort_id)
    raise InvalidInput(f"target_kind must be one of {', '.join(TARGET_KINDS)}")


# -- scores -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NewScore:
    target_uid: str
    target_kind: str
    score_type: str | int
    value: Any
    confidence: float | None = None
    comment: str = ""


def create_score(
    session: Session, orthanc: OrthancClient, principal: Principal, visibility: Visibility, new: NewScore
) -> Score:
    target = resolve_target(session, orthanc, principal, visibility, new.target_kind, new.target_uid)
    score_type = usable_type(session, principal, new.score_type, target.cohorts)
    value = check_value(score_type, new.value)
    if new.confidence is not None and not 0.0 <= new.confidence <= 1.0:
        raise InvalidInput("confidence lies between 0 and 1")
    score = Score(
        target_uid=new.target_uid,
        target_kind=new.target_kind,
        study_uid=target.study_uid,
        series_uid=target.series_uid,
        cohort_id=score_type.cohort_id if score_type.cohort_id is not None else target.own_cohort,
        score_type_id=score_type.id,
        value=value,
        confidence=new.confidence,
        comment=new.comment,
        rater=principal.username,
    )
    session.add(score)
    session.flush()
    return score


def sees_score(principal: Principal, visibility: Visibility, score: Score) -> bool:
    if score.cohort_id is not None and principal.role_in(score.cohort_id) is None:
        return False
    if score.series_uid:
        return visibility.sees_series(score.study_uid, score.series_uid)
    if score.study_uid:
        return visibility.sees_whole_study(score.study_uid)
    return score.cohort_id is not None  # a prediction from an uploaded CSV: its cohort was checked above


def cohort_scores(session: Session, cohort_id: int, score_type_id: int | None = None) -> list[Score]:
    """Scores filed under a cohort, or given on its data with a type that is not another cohort's own."""
    whole_studies = select(CohortItem.study_uid).where(CohortItem.cohort_id == cohort_id, CohortItem.series_uid == "")
    single_series = select(CohortItem.series_uid).where(CohortItem.cohort_id == cohort_id, CohortItem.series_uid != "")
    in_cohort_data = or_(
        and_(Score.series_uid == "", Score.study_uid.in_(whole_studies)),
        and_(Score.series_uid != "", or_(Score.study_uid.in_(whole_studies), Score.series_uid.in_(single_series))),
    )
    query = select(Score).where(or_(Score.cohort_id == cohort_id, and_(Score.cohort_id.is_(None), in_cohort_data)))
    if score_type_id is not None:
        query = query.where(Score.score_type_id == score_type_id)
    return list(session.scalars(query.order_by(Score.created_at, Score.id)))


def _type_ids(session: Session, principal: Principal, reference: str, cohort_id: int | None) -> set[int]:
    """The ids a score_type filter names: in a cohort, its one usable type; else every usable type of that key."""
    if cohort_id is not None:
        return {score_type_for_cohort(session, principal, reference, cohort_id).id}
    usable = {t.id for t in list_score_types(session, principal)}
    matches = {t.id for t in by_reference(session, reference) if t.id in usable}
    if not matches:
        raise InvalidInput(f"no score type {reference} usable here (GET /api/score-types lists yours)")
    return matches


def list_scores(
    session: Session,
    principal: Principal,
    visibility: Visibility,
    target_uid: str | None,
    cohort_id: int | None,
    score_type: str | None,
) -> dict[str, Any]:
    """Scores of one target, or of one cohort's data, with a summary per scored item and type."""
    if not target_uid and cohort_id is None:
        raise InvalidInput("name a target_uid, or a cohort (and optionally a score_type)")
    if cohort_id is not None and principal.role_in(cohort_id) is None:
        raise NotFound(f"no cohort {cohort_id}")
    if cohort_id is not None:
        scores = cohort_scores(session, cohort_id)
    else:
        scores = list(session.scalars(select(Score).where(Score.target_uid == target_uid).order_by(Score.id)))
    if target_uid:
        scores = [s for s in scores if s.target_uid == target_uid]
    if score_type:
        wanted = _type_ids(session, principal, score_type, cohort_id)
        scores = [s for s in scores if s.score_type_id in wanted]
    visible = [s for s in scores if sees_score(principal, visibility, s)]
    type_ids = {s.score_type_id for s in visible}
    types = {t.id: t for t in session.scalars(select(ScoreType).where(ScoreType.id.in_(type_ids)))}
    return {
        "scores": [score_json(s, types[s.score_type_id]) for s in visible],
        "summary": summaries(visible, types),
    }


def score_json(score: Score, score_type: ScoreType) -> dict[str, Any]:
    labels = score_type.labels or {}
    return {
        "id": score.id,
        "target_uid": score.target_uid,
        "target_kind": score.target_kind,
        "study_uid": score.study_uid,
        "series_uid": score.series_uid,
        "cohort_id": score.cohort_id,
        "score_type": score_type.key,
        "score_type_id": score_type.id,
        "value": score.value,
        "value_label": labels.get(str(score.value)) if labels else None,
        "confidence": score.confidence,
        "comment": score.comment,
        "rater": score.rater,
        "created_at": score.created_at.isoformat(),
    }


def summaries(scores: list[Score], types: dict[int, ScoreType]) -> list[dict[str, Any]]:
    grouped: dict[tuple[str, str, int], list[Score]] = defaultdict(list)
    for score in scores:
        grouped[(score.target_uid, score.target_kind, score.score_type_id)].append(score)
    result = []
    for (target_uid, target_kind, type_id), group in grouped.items():
        confidences = [s.confidence for s in group if s.confidence is not None]
        result.append(
            {
                "target_uid": target_uid,
                "target_kind": target_kind,
                "score_type": types[type_id].key,
                "score_type_id": type_id,
                "count": len(group),
                "raters": sorted({s.rater for s in group}),
                "distribution": distribution(types[type_id].kind, types[type_id].labels, [s.value for s in group]),
                "mean_confidence": statistics.fmean(confidences) if confidences else None,
            }
        )
    return result
