"""`/api/batches`: cohort batches (segmentation, radiomics, classification over a cohort's series), their dry run,
progress, failed items, cancel and resume."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from awesomme.api import schemas
from awesomme.api.deps import SQL_INT_MAX, CurrentPrincipal, DbSession, RowId
from awesomme.core import audit
from awesomme.orthanc.client import get_client
from awesomme.services import batches

router = APIRouter(prefix="/batches", tags=["batches"], responses=schemas.errors(401, 403, 404, 409, 422))

_TEXT = re.compile(r"^[^\x00-\x1f\x7f\\]*$")  # what a DICOM LO/ST may hold: no control characters, no backslash


class SelectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    modality: Literal["CT", "MR"] | None = None
    series_number: int | None = Field(default=None, ge=0, le=SQL_INT_MAX)
    description: str | None = Field(default=None, max_length=200, description="a regular expression (searched)")


class SegChoiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=256)
    tag: str | None = Field(default=None, max_length=64)
    author: str | None = Field(default=None, max_length=64)


class NewBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cohort: int = Field(ge=1, le=SQL_INT_MAX)
    kind: Literal["segmentation", "radiomics", "classification"]
    model: str | None = Field(default=None, max_length=64, description="segmentation and classification")
    preset: str | None = Field(default=None, max_length=80, description="radiomics: <name> or <name>@<version>")
    seg: SegChoiceIn | None = Field(default=None, description="radiomics: which SEG of each series")
    input_tag: str | None = Field(default=None, max_length=128, description="classification: the feature sets' tag")
    segment_number: int = Field(default=1, ge=1, le=65535, description="radiomics: the segment of the SEG")
    selection: SelectionIn = Field(default_factory=SelectionIn)
    description: str = Field(default="", max_length=48)
    tag: str = Field(default="", max_length=32)
    dry_run: bool = False

    @field_validator("description", "tag")
    @classmethod
    def _dicom_text(cls, value: str) -> str:
        if not _TEXT.match(value):
            raise ValueError("no control characters or backslashes (it goes into DICOM text)")
        return value


def _request(body: NewBatch) -> batches.BatchRequest:
    seg = body.seg or SegChoiceIn()
    return batches.BatchRequest(
        cohort=body.cohort,
        kind=body.kind,
        selection=batches.Selection(body.selection.modality, body.selection.series_number, body.selection.description),
        model=body.model,
        preset=body.preset,
        seg=batches.SegChoice(seg.description, seg.tag, seg.author),
        input_tag=body.input_tag,
        segment_number=body.segment_number,
        description=body.description,
        tag=body.tag,
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.BatchCreated,
    summary="Start a batch over a cohort's series (admins of the cohort); dry_run: what it would run, per patient",
    responses={200: {"model": schemas.BatchDryRun, "description": "the dry run: nothing was created"}},
)
def start_batch(body: NewBatch, principal: CurrentPrincipal, session: DbSession) -> Any:
    request = _request(body)
    spec = batches.check_request(session, principal, request)
    chosen = batches.plan(session, get_client(), request, spec)
    if body.dry_run:
        answer = schemas.BatchDryRun(dry_run=True, spec=spec, **chosen.as_json())
        counts = answer.counts
        audit.record(session, "batch.dry_run", target="", cohort=str(body.cohort), params={"kind": body.kind, **counts})
        return JSONResponse(answer.model_dump(), status_code=status.HTTP_200_OK)
    batch = batches.create(session, principal, request, spec, chosen)
    audit.record(
        session,
        "batch.create",
        target=str(batch.id),
        cohort=str(batch.cohort_id),
        params={"kind": batch.kind, "items": len(chosen.runs), "tag": batch.tag, **spec},
    )
    session.commit()  # before the runner looks
    batches.wake()
    counts = batches.counts_of(session, batch.id)
    return schemas.BatchCreated(id=batch.id, status=batch.status, counts=schemas.BatchCounts(**counts))


@router.get("", summary="The batches of a cohort (admins of the cohort)")
def list_batches(
    principal: CurrentPrincipal,
    session: DbSession,
    cohort: Annotated[int, Query(ge=1, le=SQL_INT_MAX)],
) -> list[schemas.BatchStatus]:
    found = batches.list_batches(session, principal, cohort)
    return [schemas.BatchStatus(**batches.batch_json(session, batch)) for batch in found]


@router.get("/{batch_id}", summary="A batch's status, counts per item state, start and estimated seconds left")
def batch_status(batch_id: RowId, principal: CurrentPrincipal, session: DbSession) -> schemas.BatchStatus:
    batch = batches.visible_batch(session, principal, batch_id)
    return schemas.BatchStatus(**batches.batch_json(session, batch))


@router.get("/{batch_id}/items", summary="A batch's items (one per series), with each failed item's error")
def batch_items(
    batch_id: RowId,
    principal: CurrentPrincipal,
    session: DbSession,
    item_status: Annotated[Literal["pending", "running", "done", "failed"] | None, Query(alias="status")] = None,
) -> list[schemas.BatchItemOut]:
    batch = batches.visible_batch(session, principal, batch_id)
    return [schemas.BatchItemOut(**batches.item_json(item)) for item in batches.items_of(session, batch, item_status)]


@router.post("/{batch_id}/cancel", summary="Start no more items of the batch (running ones finish and are kept)")
def cancel_batch(batch_id: RowId, principal: CurrentPrincipal, session: DbSession) -> schemas.BatchStatus:
    batch = batches.cancel(session, batches.visible_batch(session, principal, batch_id))
    audit.record(session, "batch.cancel", target=str(batch.id), cohort=str(batch.cohort_id))
    session.commit()
    batches.wake()
    return schemas.BatchStatus(**batches.batch_json(session, batch))


@router.post("/{batch_id}/resume", summary="Go on with a cancelled batch; failed items run again")
def resume_batch(batch_id: RowId, principal: CurrentPrincipal, session: DbSession) -> schemas.BatchStatus:
    batch = batches.resume(session, batches.visible_batch(session, principal, batch_id))
    audit.record(session, "batch.resume", target=str(batch.id), cohort=str(batch.cohort_id))
    session.commit()
    batches.wake()
    return schemas.BatchStatus(**batches.batch_json(session, batch))
