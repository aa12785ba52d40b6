"""``/api/imports``: bring DICOM files, or legacy NIfTI images with their masks and a sheet, into a cohort.

An import runs in the background: ``POST`` answers 202 with its id at once (after the checks that need no file
read: the cohort, the archive's guards, the sheet), ``GET /api/imports/{id}`` reports its progress and, per stored
series or refused file, what happened. The identity map is the importer's, once (``mapping.csv``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile, status
from pydantic import BaseModel

from awesomme.api import schemas
from awesomme.api.deps import CurrentDatastore, CurrentPrincipal, RowId
from awesomme.core.errors import InvalidInput
from awesomme.intake.archive import UploadedFile
from awesomme.services import imports


class ImportStarted(BaseModel):
    id: int


class ImportItem(BaseModel):
    """A stored series (``study_uid``, ``series_uid``, ``seg_uid`` for a mask) or a refused file (``error``)."""

    file: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    seg_uid: str | None = None
    instances: int | None = None
    status: str | None = None  # stored | already present
    error: str | None = None


class ImportReport(BaseModel):
    id: int
    cohort_id: int
    kind: str
    status: str  # running | done | failed
    files: int
    done_files: int
    items: list[ImportItem]
    error: str | None
    created_at: str
    finished_at: str | None
    mapping: str  # none | ready | taken | expired
    mapping_note: str


router = APIRouter(prefix="/imports", tags=["imports"], responses=schemas.errors(401, 403, 404, 410, 413, 422))
_MAX_FILES = 20000


def _read(upload: UploadFile) -> UploadedFile:
    name = (upload.filename or "upload").replace("\x00", "")[:255]
    return UploadedFile(name, upload.file.read())


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Import DICOM (files or one zip) or legacy NIfTI (images, masks, a CSV sheet) into a cohort you administer",
)
def start_import(
    principal: CurrentPrincipal,
    datastore: CurrentDatastore,
    cohort: Annotated[str, Form(min_length=1, max_length=64, description="the target cohort's id or name")],
    kind: Annotated[str, Form(pattern="^(dicom|nifti)$")],
    files: Annotated[list[UploadFile], File(description="DICOM or NIfTI files, or one zip of them")],
    sheet: Annotated[UploadFile | None, File(description="for kind=nifti: the CSV metadata sheet")] = None,
) -> ImportStarted:
    if len(files) > _MAX_FILES:
        raise InvalidInput(f"files: more than {_MAX_FILES} files; send a zip")
    job_id = imports.start(
        principal, datastore, cohort, kind, [_read(upload) for upload in files], _read(sheet) if sheet else None
    )
    return ImportStarted(id=job_id)


@router.get("", summary="Your imports, newest first")
def list_imports(principal: CurrentPrincipal) -> list[ImportReport]:
    return [ImportReport.model_validate(job) for job in imports.list_jobs(principal)]


@router.get("/{import_id}", summary="One of your imports: its state and, per series or refused file, what happened")
def get_import(import_id: RowId, principal: CurrentPrincipal) -> ImportReport:
    return ImportReport.model_validate(imports.job_report(principal, import_id))


@router.get(
    "/{import_id}/mapping.csv",
    summary="The identity map of your import: once, within 24 hours, before a restart",
    response_class=schemas.CsvResponse,
    responses=schemas.text_errors(401, 403, 404, 410, 413, 422),
)
def get_mapping(import_id: RowId, principal: CurrentPrincipal) -> schemas.CsvResponse:
    content = imports.take_mapping(principal, import_id)
    return schemas.CsvResponse(
        content, headers={"Content-Disposition": f'attachment; filename="import-{import_id}-mapping.csv"',
                          "Cache-Control": "no-store"}
    )  # fmt: skip
