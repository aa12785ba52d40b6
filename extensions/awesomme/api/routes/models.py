"""``/api/models``: the models a caller may run (for the viewer's selector), and binding models to cohorts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from awesomme.api import schemas
from awesomme.api.deps import SQL_INT_MAX, UID_PATTERN, CurrentPrincipal, CurrentVisibility, DbSession
from awesomme.core import audit
from awesomme.core.errors import NotFound
from awesomme.core.visibility import Principal, Visibility, cohorts_of_series
from awesomme.inference.config import SegmentationModelConfig
from awesomme.inference.registry import get_registry
from awesomme.models import Cohort
from awesomme.orthanc.client import get_client
from awesomme.orthanc.visible import visible_series_state
from awesomme.services import cohorts

router = APIRouter(prefix="/models", tags=["models"], responses=schemas.errors(401, 403, 404, 422))


class Binding(BaseModel):
    cohorts: list[Annotated[int, Field(ge=1, le=SQL_INT_MAX)] | str] = Field(
        max_length=1000, description="cohort ids or names"
    )


def _cohort_refs(session: Session, ids: set[int]) -> list[schemas.CohortRef]:
    rows = session.execute(select(Cohort.id, Cohort.name).where(Cohort.id.in_(ids)).order_by(Cohort.name))
    return [schemas.CohortRef(id=cohort_id, name=name) for cohort_id, name in rows]


def _describe(session: Session, config: SegmentationModelConfig, bound: set[int]) -> schemas.SegmentationModel:
    return schemas.SegmentationModel(
        name=config.name,
        version=config.version,
        modality=config.modality,
        labels=config.labels,
        demo_weights=config.demo_weights,
        intended_use=config.intended_use,
        expected_runtime_s=config.expected_runtime_s,
        validation=config.validation,
        cohorts=_cohort_refs(session, bound),
    )


def _usable(
    session: Session, principal: Principal, visibility: Visibility, series_uid: str | None
) -> list[schemas.SegmentationModel]:
    """Platform admins run any model anywhere; others where the series' cohort is theirs and bound to the model.

    A model's cohorts are listed to others only where they are theirs: a model shared with other cohorts must not
    name them.
    """
    state = None
    if series_uid is not None:
        state = visible_series_state(get_client(), visibility, series_uid)  # absent and not yours: the same 404
    listed = []
    where = set(principal.roles)
    if state is not None:
        where &= cohorts_of_series(session, state.study_uid, state.series_uid)
    for model in get_registry().models.values():
        config = model.config
        if state is not None and config.modality != state.modality:
            continue
        bound = cohorts.bound_cohorts(session, config)
        if principal.platform_admin or bound & where:
            shown = bound if principal.platform_admin else bound & set(principal.roles)
            listed.append(_describe(session, config, shown))
    return sorted(listed, key=lambda item: item.name)


@router.get("", summary="Models you may run (on one series, with ?series_uid=): version, run time, validation")
def usable_models(
    principal: CurrentPrincipal,
    visibility: CurrentVisibility,
    session: DbSession,
    series_uid: Annotated[str | None, Query(min_length=3, max_length=64, pattern=UID_PATTERN)] = None,
) -> list[schemas.SegmentationModel]:
    return _usable(session, principal, visibility, series_uid)


@router.put("/{name}/cohorts", summary="Bind a model to cohorts, replacing its YAML's list (platform admins)")
def bind(name: str, body: Binding, principal: CurrentPrincipal, session: DbSession) -> schemas.ModelBinding:
    model = get_registry().models.get(name)
    if model is None:
        raise NotFound(f"no model {name}")
    ids = cohorts.set_binding(session, principal, name, body.cohorts)
    audit.record(session, "model.bind", target=name, cohort=" ".join(map(str, ids)))
    return schemas.ModelBinding(model=name, cohorts=_cohort_refs(session, set(ids)))
