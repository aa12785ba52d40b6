"""``/api/segmentations``: the SEGs of a series, labels and predictions alike."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from monailabel.interfaces.utils.app import app_instance
from sqlalchemy import select

from awesomme.api.deps import CurrentPrincipal
from awesomme.core.db import session_scope
from awesomme.models import Cohort
from awesomme.orthanc.datastore import OrthancDatastore
from awesomme.services.visibility import Principal, cohorts_of_series

router = APIRouter(tags=["segmentations"])


def _datastore() -> OrthancDatastore:
    datastore = app_instance().datastore()
    assert isinstance(datastore, OrthancDatastore)
    return datastore


def cohorts_with_role(principal: Principal, study_uid: str, series_uid: str) -> list[dict[str, Any]]:
    """The cohorts an item belongs to that the caller is in, with the caller's role there."""
    with session_scope() as session:
        ids = cohorts_of_series(session, study_uid, series_uid)
        rows = session.execute(select(Cohort.id, Cohort.name).where(Cohort.id.in_(ids)).order_by(Cohort.name))
        return [
            {"id": cohort_id, "name": name, "role": principal.role_in(cohort_id)}
            for cohort_id, name in rows
            if principal.role_in(cohort_id)
        ]


def _listing(principal: Principal, series_uid: str) -> list[dict[str, Any]]:
    datastore = _datastore()
    state = datastore.image_state(series_uid)  # 404 for an unknown series, or one outside the caller's cohorts
    cohorts = cohorts_with_role(principal, state.study_uid, series_uid)  # a SEG belongs to its source's cohorts
    return [
        {
            "seg_uid": record.seg_series_uid,
            "role": record.role,
            "tag": record.tag,
            "algorithm_type": record.algorithm_type,
            "author": record.author,
            "model": record.model_name,
            "model_version": record.model_version,
            "description": record.description,
            "created_at": record.created_at.isoformat(),
            "segments": record.segments,
            "derived_from": record.derived_from,
            "cohorts": cohorts,
        }
        for record in datastore.segmentations_of(series_uid)
    ]


@router.get(
    "/segmentations",
    summary="SEGs of a series in your cohorts: author or model, type, date, segments, cohorts",
)
async def list_segmentations(
    principal: CurrentPrincipal, series_uid: str = Query(..., min_length=3, max_length=64)
) -> list[dict[str, Any]]:
    return await run_in_threadpool(_listing, principal, series_uid)
