"""`/api/radiomics`: feature extraction, presets, feature sets and their provenance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from awesomme.api import schemas
from awesomme.api.deps import (
    SQL_INT_MAX,
    CurrentDatastore,
    CurrentPrincipal,
    CurrentVisibility,
    DbSession,
    DicomUid,
    RowId,
    UidQuery,
)
from awesomme.core import audit
from awesomme.core.visibility import cohorts_of_series
from awesomme.services import radiomics

router = APIRouter(prefix="/radiomics", tags=["radiomics"], responses=schemas.errors(401, 403, 404, 409, 422))


class Extraction(BaseModel):
    series_uid: DicomUid
    seg_uid: DicomUid
    segment_number: int = Field(default=1, ge=1, le=65535)
    preset: str | None = Field(default=None, max_length=80, description="<name> (newest version) or <name>@<version>")
    parameters: dict[str, Any] | None = Field(default=None, description="PyRadiomics parameters instead of a preset")
    tag: str = Field(default="", max_length=128)


class NewPreset(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    parameters: dict[str, Any] = Field(description="the full PyRadiomics parameter set (imageType, featureClass, ...)")
    cohort: int | None = Field(default=None, ge=1, le=SQL_INT_MAX, description="the cohort; none: platform-wide")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Extract radiomics features of one segment of a SEG on its series, store them with their provenance",
)
def extract(body: Extraction, principal: CurrentPrincipal, datastore: CurrentDatastore) -> schemas.FeatureSet:
    request = radiomics.ExtractionRequest(
        series_uid=body.series_uid,
        seg_uid=body.seg_uid,
        segment_number=body.segment_number,
        preset=body.preset,
        parameters=body.parameters,
        tag=body.tag,
    )
    # Seconds of CPU work: a plain def, so FastAPI runs it in a worker thread, never on the event loop.
    feature_set = radiomics.extract(datastore, principal, request)
    return schemas.FeatureSet(**radiomics.feature_set_json(feature_set))


@router.get("", summary="Feature sets of a series in your cohorts (without their values)")
def list_feature_sets(
    visibility: CurrentVisibility, session: DbSession, series_uid: UidQuery
) -> list[schemas.FeatureSetSummary]:
    return [schemas.FeatureSetSummary(**row) for row in radiomics.feature_sets_of(session, visibility, series_uid)]


@router.get("/presets", summary="Radiomics presets you may use: built-in, platform-wide and your cohorts'")
def list_presets(principal: CurrentPrincipal, session: DbSession) -> list[schemas.Preset]:
    return [schemas.Preset(**preset.as_json()) for preset in radiomics.list_presets(session, principal)]


@router.post(
    "/presets",
    status_code=status.HTTP_201_CREATED,
    summary="Add a preset, or a new version of one (admins of the cohort; platform-wide: platform admins)",
)
def create_preset(body: NewPreset, principal: CurrentPrincipal, session: DbSession) -> schemas.Preset:
    preset = radiomics.create_preset(session, principal, body.name, body.parameters, body.cohort)
    cohort = "" if body.cohort is None else str(body.cohort)
    audit.record(session, "radiomics.preset.create", target=preset.ref, cohort=cohort)
    return schemas.Preset(**preset.as_json())


# Declared before "/{feature_set_id}", which would otherwise take "12.csv" for an id.
@router.get(
    "/{feature_set_id}.csv",
    summary="A feature set as CSV: one row of identity, provenance and features",
    response_class=schemas.CsvResponse,
    responses=schemas.text_errors(401, 403, 404, 409, 422),
)
def feature_set_csv(feature_set_id: RowId, visibility: CurrentVisibility, session: DbSession) -> schemas.CsvResponse:
    feature_set = radiomics.visible_feature_set(session, visibility, feature_set_id)
    cohorts = sorted(cohorts_of_series(session, feature_set.study_uid, feature_set.series_uid))
    audit.record(
        session,
        "data.exported",
        target=feature_set.series_uid,
        cohort=" ".join(map(str, cohorts)),
        params={"feature_set": feature_set_id, "format": "csv"},
    )
    text = radiomics.feature_set_csv(feature_set)
    disposition = f'attachment; filename="feature-set-{feature_set_id}.csv"'
    return schemas.CsvResponse(text, headers={"Content-Disposition": disposition})


@router.get("/{feature_set_id}", summary="A feature set: its features by name and its provenance")
def feature_set(feature_set_id: RowId, visibility: CurrentVisibility, session: DbSession) -> schemas.FeatureSet:
    visible = radiomics.visible_feature_set(session, visibility, feature_set_id)
    return schemas.FeatureSet(**radiomics.feature_set_json(visible))
