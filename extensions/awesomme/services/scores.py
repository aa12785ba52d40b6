"""Score types and experts' scores: who may define and give them, value checks, cohort-filtered listings.

A score belongs to its target's cohorts (a SEG, feature set or prediction: those of its source series), like every
derived object. Its ``cohort_id`` is set when it is filed under one cohort: scored with a cohort's own type, or on
a prediction made from an uploaded CSV (which belongs to the cohort named with it).
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from awesomme.core.db import row_id
from awesomme.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from awesomme.core.visibility import Principal, Visibility, cohorts_of_series
from awesomme.models import CohortItem, FeatureSet, Prediction, Score, ScoreKind, ScoreType, Segmentation
from awesomme.orthanc.client import OrthancClient
from awesomme.orthanc.visible import visible_series_state
from awesomme.services.cohorts import cohort_for_admin

__all__ = [
    "TARGET_KINDS",
    "TEXT_MAX_CHARS",
    "NewScore",
    "NewScoreType",
    "Target",
    "category_index",
    "cohort_scores",
    "create_score",
    "create_score_type",
    "list_score_types",
    "list_scores",
    "resolve_target",
    "score_type_for_cohort",
    "score_type_json",
]

TARGET_KINDS = ("study", "series", "seg", "feature_set", "prediction")
TEXT_MAX_CHARS = 4000
KEY = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
MAX_CATEGORIES = 100


# -- score types ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NewScoreType:
    key: str
    kind: str
    name: str = ""
    labels: dict[str, str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    cohort_id: int | None = None


def score_type_json(score_type: ScoreType) -> dict[str, Any]:
    return {
        "id": score_type.id,
        "key": score_type.key,
        "name": score_type.name,
        "kind": score_type.kind,
        "labels": score_type.labels,
        "minimum": score_type.minimum,
        "maximum": score_type.maximum,
        "cohort_id": score_type.cohort_id,
        "created_by": score_type.created_by,
        "created_at": score_type.created_at.isoformat(),
    }


def list_score_types(session: Session, principal: Principal) -> list[ScoreType]:
    """Built-in and platform-wide types, and those of the caller's cohorts (every one, for platform admins)."""
    query = select(ScoreType).order_by(ScoreType.id)
    if not principal.platform_admin:
        query = query.where(or_(ScoreType.cohort_id.is_(None), ScoreType.cohort_id.in_(principal.roles)))
    return list(session.scalars(query))


def _check_definition(definition: NewScoreType) -> None:
    if not KEY.match(definition.key):
        raise InvalidInput("a score type key has 1 to 64 lower-case letters, digits, '_', '.' or '-', letter first")
    if definition.kind not in ScoreKind.ALL:
        raise InvalidInput(f"kind must be one of {', '.join(ScoreKind.ALL)}")
    categorical = definition.kind in (ScoreKind.ORDINAL, ScoreKind.NOMINAL)
    if categorical:
        labels = definition.labels or {}
        if not 2 <= len(labels) <= MAX_CATEGORIES:
            raise InvalidInput(f"an {definition.kind} type needs 2 to {MAX_CATEGORIES} labels {{value: description}}")
        if any(not 1 <= len(key) <= 64 or len(text) > 256 for key, text in labels.items()):
            raise InvalidInput("label values have 1 to 64 characters, descriptions at most 256")
    elif definition.labels:
        raise InvalidInput(f"a {definition.kind} type has no labels")
    if definition.kind == ScoreKind.NUMERIC:
        low, high = definition.minimum, definition.maximum
        if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            raise InvalidInput("a numeric type needs a finite range: minimum < maximum")
    elif definition.minimum is not None or definition.maximum is not None:
        raise InvalidInput("only numeric types have a minimum and maximum")


def create_score_type(session: Session, principal: Principal, definition: NewScoreType) -> ScoreType:
    """Platform admins define platform-wide types; cohort admins types of their cohort (its key unique there)."""
    if definition.cohort_id is None:
        if not principal.platform_admin:
            raise Forbidden("platform-wide score types are for platform admins: name your cohort with cohort_id")
    else:
        cohort_for_admin(session, principal, definition.cohort_id)
    _check_definition(definition)
    platform_wide = session.scalar(
        select(ScoreType).where(ScoreType.key == definition.key, ScoreType.cohort_id.is_(None))
    )
    if platform_wide is not None:
        raise Conflict(f"a platform-wide score type {definition.key} exists (types are never edited: pick a new key)")
    same = select(ScoreType).where(ScoreType.key == definition.key)
    if definition.cohort_id is None:
        clash = session.scalars(same).first()  # a platform-wide key must not shadow a cohort's own
    else:
        clash = session.scalar(same.where(ScoreType.cohort_id == definition.cohort_id))
    if clash is not None:
        raise Conflict(f"score type {definition.key} exists in cohort {clash.cohort_id}")
    categorical = definition.kind in (ScoreKind.ORDINAL, ScoreKind.NOMINAL)
    score_type = ScoreType(
        key=definition.key,
        name=definition.name or definition.key,
        kind=definition.kind,
        labels=dict(definition.labels or {}) if categorical else None,
        minimum=definition.minimum,
        maximum=definition.maximum,
        cohort_id=definition.cohort_id,
        created_by=principal.username,
    )
    try:
        with session.begin_nested():  # a concurrent twin of this type: the unique constraint decides
            session.add(score_type)
    except IntegrityError:
        raise Conflict(f"score type {definition.key} was just defined by someone else") from None
    return score_type


def _by_reference(session: Session, reference: str | int) -> list[ScoreType]:
    """Types named by id (a number) or key."""
    if isinstance(reference, int) or reference.isdigit():  # an id, or a number no row can have
        number = row_id(reference)
        found = session.get(ScoreType, number) if number is not None else None
        return [found] if found is not None else []
    return list(session.scalars(select(ScoreType).where(ScoreType.key == str(reference)).order_by(ScoreType.id)))


def _usable_type(session: Session, principal: Principal, reference: str | int, cohorts: set[int]) -> ScoreType:
    """The one type ``reference`` names among the platform-wide ones and those of ``cohorts`` that are the caller's."""
    mine = cohorts if principal.platform_admin else cohorts & set(principal.roles)
    found = [t for t in _by_reference(session, reference) if t.cohort_id is None or t.cohort_id in mine]
    if not found:
        raise InvalidInput(f"no score type {reference} usable here (GET /api/score-types lists yours)")
    if len(found) > 1:
        listed = ", ".join(f"{t.id} (cohort {t.cohort_id})" for t in found)
        raise InvalidInput(
            f"score type {reference} is defined by several cohorts of this item: give its id, one of {listed}"
        )
    return found[0]


def score_type_for_cohort(session: Session, principal: Principal, reference: str | int, cohort_id: int) -> ScoreType:
    return _usable_type(session, principal, reference, {cohort_id})


# -- values -----------------------------------------------------------------------------------------------------
def _integer_keys(score_type: ScoreType) -> bool:
    return all(re.fullmatch(r"-?[0-9]+", key) for key in score_type.labels or {})


def check_value(score_type: ScoreType, value: Any) -> Any:
    """``value`` as stored, or a clear 422: a category of the type, a number in its range, or bounded text."""
    if score_type.kind in (ScoreKind.ORDINAL, ScoreKind.NOMINAL):
        labels = score_type.labels or {}
        if _integer_keys(score_type):
            number = value if isinstance(value, int) and not isinstance(value, bool) else None
            if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
                number = int(value)
            if number is None or str(number) not in labels:
                raise InvalidInput(f"{score_type.key} takes an integer among {', '.join(labels)}; got {value!r}")
            return number
        if not isinstance(value, str) or value not in labels:
            raise InvalidInput(f"{score_type.key} takes one of {', '.join(labels)}; got {value!r}")
        return value
    if score_type.kind == ScoreKind.NUMERIC:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidInput(f"{score_type.key} takes a number; got {value!r}")
        low, high = score_type.minimum, score_type.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            raise InvalidInput(f"{score_type.key} takes a number from {low} to {high}; got {value}")
        return value
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{score_type.key} takes a non-empty text")
    if len(value) > TEXT_MAX_CHARS:
        raise InvalidInput(f"{score_type.key} takes at most {TEXT_MAX_CHARS} characters; got {len(value)}")
    return value


def category_index(score_type: ScoreType, value: Any) -> int:
    """The position of a categorical value on its type's scale (what the agreement statistics compare)."""
    return list(score_type.labels or {}).index(str(value))


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
    score_type = _usable_type(session, principal, new.score_type, target.cohorts)
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
    matches = {t.id for t in _by_reference(session, reference) if t.id in usable}
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


def distribution(score_type: ScoreType, values: Iterable[Any]) -> dict[str, Any]:
    """Counts per category (all of them), or the numbers' spread; text has none."""
    values = list(values)
    if score_type.kind in (ScoreKind.ORDINAL, ScoreKind.NOMINAL):
        counts = Counter(str(value) for value in values)
        return {key: counts.get(key, 0) for key in score_type.labels or {}}
    if score_type.kind == ScoreKind.NUMERIC and values:
        numbers = [float(value) for value in values]
        return {
            "mean": statistics.fmean(numbers),
            "median": statistics.median(numbers),
            "sd": statistics.stdev(numbers) if len(numbers) > 1 else None,
            "min": min(numbers),
            "max": max(numbers),
        }
    return {}


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
                "distribution": distribution(types[type_id], (s.value for s in group)),
                "mean_confidence": statistics.fmean(confidences) if confidences else None,
            }
        )
    return result
