"""`/api/score-types` and `/api/scores`: experts' scores of studies, series and derived objects."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from awesomme.api import schemas
from awesomme.api.deps import SQL_INT_MAX, CurrentPrincipal, CurrentVisibility, DbSession
from awesomme.core import audit
from awesomme.models import ScoreType
from awesomme.orthanc.client import get_client
from awesomme.services import score_types, scores

router = APIRouter(tags=["scores"], responses=schemas.errors(401, 403, 404, 409, 422))


class ScoreTypeBody(BaseModel):
    key: str = Field(min_length=1, max_length=64, description="lower-case, letter first: how scores name the type")
    kind: Literal["ordinal", "nominal", "numeric", "text"]
    name: str = Field(default="", max_length=128)
    labels: dict[str, str] | None = Field(default=None, description="categories in order: {value: description}")
    minimum: float | None = Field(default=None, description="numeric types: the lowest value allowed")
    maximum: float | None = Field(default=None, description="numeric types: the highest value allowed")
    cohort_id: int | None = Field(default=None, ge=1, le=SQL_INT_MAX, description="your cohort; none: platform-wide")


class ScoreBody(BaseModel):
    target_uid: str = Field(min_length=1, max_length=64, description="a DICOM UID, or a feature set / prediction id")
    target_kind: Literal["study", "series", "seg", "feature_set", "prediction"]
    score_type: str | int = Field(description="the type's key (mrs, free_text, numeric, ...) or id")
    value: Any = Field(description="a category of the type, a number in its range, or text")
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    comment: str = Field(default="", max_length=score_types.TEXT_MAX_CHARS)


@router.get("/score-types", summary="Score types you may use: built in, platform-wide and your cohorts' own")
def list_types(principal: CurrentPrincipal, session: DbSession) -> list[schemas.ScoreType]:
    return [
        schemas.ScoreType(**score_types.score_type_json(t)) for t in score_types.list_score_types(session, principal)
    ]


@router.post(
    "/score-types",
    status_code=status.HTTP_201_CREATED,
    summary="Define a score type: platform admins platform-wide, cohort admins for their cohort (never edited)",
)
def create_type(body: ScoreTypeBody, principal: CurrentPrincipal, session: DbSession) -> schemas.ScoreType:
    created = score_types.create_score_type(session, principal, score_types.NewScoreType(**body.model_dump()))
    audit.record(
        session,
        "score_type.create",
        target=created.key,
        cohort=str(created.cohort_id or ""),
        params={"id": created.id, "kind": created.kind},
    )
    return schemas.ScoreType(**score_types.score_type_json(created))


@router.post("/scores", status_code=status.HTTP_201_CREATED, summary="Score a study, series or derived object")
def create(
    body: ScoreBody, principal: CurrentPrincipal, visibility: CurrentVisibility, session: DbSession
) -> schemas.Score:
    score = scores.create_score(session, get_client(), principal, visibility, scores.NewScore(**body.model_dump()))
    score_type = session.get(ScoreType, score.score_type_id)
    assert score_type is not None
    audit.record(
        session,
        "score.create",
        target=score.target_uid,
        cohort=str(score.cohort_id or ""),
        params={"id": score.id, "target_kind": score.target_kind, "score_type": score_type.key},
    )
    return schemas.Score(**scores.score_json(score, score_type))


@router.get(
    "/scores",
    summary="Scores of one target (?target_uid=) or of a cohort's data (?cohort=), with a summary per item",
)
def list_scores(
    principal: CurrentPrincipal,
    visibility: CurrentVisibility,
    session: DbSession,
    target_uid: str | None = Query(default=None, min_length=1, max_length=64),
    cohort: int | None = Query(default=None, ge=1, le=SQL_INT_MAX),
    score_type: str | None = Query(default=None, min_length=1, max_length=64, description="key or id"),
) -> schemas.ScoreList:
    return schemas.ScoreList.model_validate(
        scores.list_scores(session, principal, visibility, target_uid, cohort, score_type)
    )
