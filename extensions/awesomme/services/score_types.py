"""Score types: what experts score with (ordinal or nominal scales, numbers in a range, free text), who defines
them (platform admins platform-wide, cohort admins for their cohort), and the values each one takes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from awesomme.core.db import row_id
from awesomme.core.errors import Conflict, Forbidden, InvalidInput
from awesomme.core.visibility import Principal
from awesomme.models import ScoreKind, ScoreType
from awesomme.services.cohorts import cohort_for_admin

__all__ = [
    "TEXT_MAX_CHARS",
    "NewScoreType",
    "by_reference",
    "category_index",
    "check_value",
    "create_score_type",
    "list_score_types",
    "score_type_for_cohort",
    "score_type_json",
    "usable_type",
]

TEXT_MAX_CHARS = 4000
KEY = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
MAX_CATEGORIES = 100


# -- definitions ------------------------------------------------------------------------------------------------
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


def by_reference(session: Session, reference: str | int) -> list[ScoreType]:
    """Types named by id (a number) or key."""
    if isinstance(reference, int) or reference.isdigit():  # an id, or a number no row can have
        number = row_id(reference)
        found = session.get(ScoreType, number) if number is not None else None
        return [found] if found is not None else []
    return list(session.scalars(select(ScoreType).where(ScoreType.key == str(reference)).order_by(ScoreType.id)))


def usable_type(session: Session, principal: Principal, reference: str | int, cohorts: set[int]) -> ScoreType:
    """The one type ``reference`` names among the platform-wide ones and those of ``cohorts`` that are the caller's."""
    mine = cohorts if principal.platform_admin else cohorts & set(principal.roles)
    found = [t for t in by_reference(session, reference) if t.cohort_id is None or t.cohort_id in mine]
    if not found:
        raise InvalidInput(f"no score type {reference} usable here (GET /api/score-types lists yours)")
    if len(found) > 1:
        listed = ", ".join(f"{t.id} (cohort {t.cohort_id})" for t in found)
        raise InvalidInput(
            f"score type {reference} is defined by several cohorts of this item: give its id, one of {listed}"
        )
    return found[0]


def score_type_for_cohort(session: Session, principal: Principal, reference: str | int, cohort_id: int) -> ScoreType:
    return usable_type(session, principal, reference, {cohort_id})


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
