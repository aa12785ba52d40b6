"""`/api/cohorts/{cohort_id}/export.csv`: a cohort's research export (its admins and platform admins)."""

from __future__ import annotations

from fastapi import APIRouter

from awesomme.api import schemas
from awesomme.api.deps import CurrentPrincipal, DbSession, RowId
from awesomme.orthanc.client import get_client
from awesomme.services import exports

router = APIRouter(tags=["exports"])


@router.get(
    "/cohorts/{cohort_id}/export.csv",
    summary="One row per series and feature-set tag: features, provenance, latest prediction, scores",
    response_class=schemas.CsvResponse,
    responses=schemas.text_errors(401, 403, 404, 422),
)
def cohort_export(cohort_id: RowId, principal: CurrentPrincipal, session: DbSession) -> schemas.CsvResponse:
    text = exports.cohort_export_csv(exports.cohort_export_rows(session, get_client(), principal, cohort_id))
    disposition = f'attachment; filename="cohort-{cohort_id}-export.csv"'
    return schemas.CsvResponse(text, headers={"Content-Disposition": disposition})
