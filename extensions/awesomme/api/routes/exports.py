"""`/api/cohorts/{cohort_id}/export.csv`: a cohort's research export (its admins and platform admins)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from awesomme.api.deps import CurrentPrincipal, RowId
from awesomme.core.db import session_scope
from awesomme.orthanc.client import get_client
from awesomme.services import exports

router = APIRouter(tags=["exports"])


@router.get(
    "/cohorts/{cohort_id}/export.csv",
    summary="One row per series and feature-set tag: features, provenance, latest prediction, scores",
    responses={200: {"content": {"text/csv": {}}}},
)
async def cohort_export(cohort_id: RowId, principal: CurrentPrincipal) -> Response:
    def work() -> str:
        with session_scope() as session:
            return exports.cohort_export_csv(exports.cohort_export_rows(session, get_client(), principal, cohort_id))

    text = await run_in_threadpool(work)
    disposition = f'attachment; filename="cohort-{cohort_id}-export.csv"'
    return Response(text, media_type="text/csv", headers={"Content-Disposition": disposition})
