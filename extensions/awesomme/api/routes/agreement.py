"""`/api/agreement`: inter-expert agreement on segmentations and scores, as JSON or CSV."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Query

from awesomme.api import schemas
from awesomme.api.deps import SQL_INT_MAX, UID_PATTERN, CurrentDatastore, CurrentPrincipal, DbSession
from awesomme.core.csv_writer import write_dict_csv
from awesomme.dicom.volumes import grid_from_datasets
from awesomme.orthanc.datastore import OrthancDatastore
from awesomme.services import agreement

router = APIRouter(prefix="/agreement", tags=["agreement"], responses=schemas.errors(401, 403, 404, 422))
CSV = schemas.CsvResponse
CSV_ERRORS = schemas.text_errors(401, 403, 404, 422)


def _csv(columns: Sequence[str], rows: list[dict[str, Any]], name: str) -> schemas.CsvResponse:
    disposition = f'attachment; filename="{name}"'
    return schemas.CsvResponse(write_dict_csv(columns, rows), headers={"Content-Disposition": disposition})


def _segmentations(datastore: OrthancDatastore, series_uid: str) -> dict[str, Any]:
    state = datastore.image_state(series_uid)  # 404 for a series outside the caller's cohorts
    source = agreement.SeriesSegmentations(
        series_uid=series_uid,
        records=datastore.segmentations_of(series_uid),
        grid=grid_from_datasets(datastore.source_metadata(state)),
        label_map=datastore.label_map,
    )
    return agreement.segmentation_agreement(source)


SeriesUid = Query(..., min_length=3, max_length=64, pattern=UID_PATTERN, description="the source series of the SEGs")
CohortId = Query(..., ge=1, le=SQL_INT_MAX)
ScoreTypeRef = Query(..., min_length=1, max_length=64, description="the score type's key or id")


@router.get(
    "/segmentations",
    summary="Dice, HD95 (mm) and volume difference (mL, %) per segment for each pair of authors of a series' SEGs",
)
def segmentations(datastore: CurrentDatastore, series_uid: str = SeriesUid) -> schemas.SegmentationAgreement:
    return schemas.SegmentationAgreement.model_validate(_segmentations(datastore, series_uid))


@router.get(
    "/segmentations.csv", summary="The same, one CSV row per pair and segment", response_class=CSV, responses=CSV_ERRORS
)
def segmentations_csv(datastore: CurrentDatastore, series_uid: str = SeriesUid) -> schemas.CsvResponse:
    rows = agreement.segmentation_rows(_segmentations(datastore, series_uid))
    return _csv(agreement.SEGMENTATION_COLUMNS, rows, f"agreement-{series_uid}.csv")


@router.get(
    "/scores",
    summary="Cohen's kappa per pair of raters, Fleiss' kappa and Krippendorff's alpha of a cohort's scores of one type",
)
def scores(
    principal: CurrentPrincipal, session: DbSession, cohort: int = CohortId, score_type: str = ScoreTypeRef
) -> schemas.ScoreAgreement:
    return schemas.ScoreAgreement.model_validate(agreement.scores_agreement(session, principal, cohort, score_type))


@router.get("/scores.csv", summary="The same, one CSV row per statistic", response_class=CSV, responses=CSV_ERRORS)
def scores_csv(
    principal: CurrentPrincipal, session: DbSession, cohort: int = CohortId, score_type: str = ScoreTypeRef
) -> schemas.CsvResponse:
    result = agreement.scores_agreement(session, principal, cohort, score_type)
    key = result["score_type"]["key"]
    return _csv(agreement.SCORE_COLUMNS, agreement.score_rows(result), f"agreement-{cohort}-{key}.csv")
