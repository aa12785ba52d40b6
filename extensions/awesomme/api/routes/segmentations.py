"""``/api/segmentations``: the SEGs of a series (labels, predictions, imports), importing earlier work,
interpolating between segmented slices, deleting a wrong SEG, and reviewing one."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy import select

from awesomme.api import schemas
from awesomme.api.deps import UID_PATTERN, CurrentDatastore, CurrentPrincipal, DicomUid, UidPath, UidQuery
from awesomme.core.db import session_scope
from awesomme.core.errors import InvalidInput
from awesomme.core.visibility import Principal, cohorts_of_series
from awesomme.models import Cohort
from awesomme.orthanc.datastore import OrthancDatastore
from awesomme.services import segmentations

router = APIRouter(tags=["segmentations"], responses=schemas.errors(401, 403, 404, 409, 413, 422))


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


def _listing(datastore: OrthancDatastore, principal: Principal, series_uid: str) -> list[schemas.SegmentationListing]:
    state = datastore.image_state(series_uid)  # 404 for an unknown series, or one outside the caller's cohorts
    cohorts = cohorts_with_role(principal, state.study_uid, series_uid)  # a SEG belongs to its source's cohorts
    records = datastore.segmentations_of(series_uid)
    reviews, origins = segmentations.reviews_and_owners([record.seg_series_uid for record in records])
    listing = [
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
            "created_by": record.created_by,
            "reader": record.reader,
            "origin": origins[record.seg_series_uid].operation if record.seg_series_uid in origins else None,
            "reviews": reviews[record.seg_series_uid],
            "demo_weights": record.demo_weights,
        }
        for record in records
    ]
    return [schemas.SegmentationListing.model_validate(item) for item in listing]


@router.get(
    "/segmentations",
    summary="SEGs of a series in your cohorts: author or model, type, date, segments, cohorts, reviews",
)
def list_segmentations(
    principal: CurrentPrincipal, datastore: CurrentDatastore, series_uid: UidQuery
) -> list[schemas.SegmentationListing]:
    return _listing(datastore, principal, series_uid)


def _label_names(text: str) -> dict[str, str] | None:
    if not text.strip():
        return None
    try:
        names = json.loads(text)
    except ValueError as error:
        raise InvalidInput(f"label_map must be a JSON object {{value or name: label}}: {error}") from error
    if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
        raise InvalidInput("label_map must be a JSON object {value or name: label}")
    return {str(key): value for key, value in names.items()}


def _reader(reader: str, author: str) -> str:
    """The declared reader; ``author`` (its former name) is accepted alone or equal."""
    if reader and author and reader != author:
        raise InvalidInput("reader and author (its former name) differ: send reader only")
    return reader or author


@router.post(
    "/segmentations/import",
    status_code=201,
    summary="Import a segmentation made elsewhere (NIfTI, NRRD, DICOM SEG, RTSTRUCT) as a SEG of a series",
)
def import_segmentation(
    principal: CurrentPrincipal,
    datastore: CurrentDatastore,
    file: Annotated[UploadFile, File(description="the segmentation: .nii, .nii.gz, .nrrd, or a DICOM SEG/RTSTRUCT")],
    series_uid: Annotated[str, Form(min_length=3, max_length=64, pattern=UID_PATTERN)],
    description: Annotated[str, Form(max_length=64)] = "",
    segment_label: Annotated[str, Form(max_length=64)] = "",
    label_map: Annotated[str, Form(max_length=16384, description='JSON {"1": "tumour", "2": "bone"}')] = "",
    algorithm_type: Annotated[str, Form(pattern="^(MANUAL|SEMIAUTOMATIC|AUTOMATIC)$")] = "MANUAL",
    algorithm_name: Annotated[str, Form(max_length=64)] = "",
    reader: Annotated[
        str, Form(max_length=64, description="who drew it (its Content Creator's Name, display only); you, if empty")
    ] = "",
    author: Annotated[str, Form(max_length=64, description="former name of `reader`, still accepted")] = "",
    file_format: Annotated[str, Form(alias="format", pattern="^(|nifti|nrrd|dicom-seg|rtstruct)$")] = "",
    tag: Annotated[str, Form(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = segmentations.IMPORT_TAG,
) -> schemas.SegmentationImported:
    request = segmentations.ImportRequest(
        series_uid=series_uid,
        filename=file.filename or "",
        description=description,
        segment_label=segment_label,
        label_names=_label_names(label_map),
        algorithm_type=algorithm_type,
        algorithm_name=algorithm_name,
        reader=_reader(reader, author),
        file_format=file_format or None,
        tag=tag,
    )
    try:
        data = file.file.read()  # a plain def: FastAPI runs it in a worker thread, where a blocking read is fine
    finally:
        file.file.close()
    imported = segmentations.import_segmentation(datastore, principal, request, data)
    return schemas.SegmentationImported.model_validate(imported)


@router.post(
    "/segmentations",
    status_code=201,
    summary="Save a viewer's DICOM SEG (BINARY) as your new label of a series: MANUAL, or SEMIAUTOMATIC with based_on",
)
def save_segmentation(
    principal: CurrentPrincipal,
    datastore: CurrentDatastore,
    file: Annotated[UploadFile, File(description="a BINARY DICOM SEG (SOP class 1.2.840.10008.5.1.4.1.1.66.4)")],
    series_uid: Annotated[str, Form(min_length=3, max_length=64, pattern=UID_PATTERN)],
    based_on: Annotated[
        str,
        Form(
            max_length=64,
            pattern=f"^(|{UID_PATTERN.strip('^$')})$",
            description="the model's SEG (a prediction of this series) the edit started from",
        ),
    ] = "",
    description: Annotated[str, Form(max_length=64)] = "",
) -> schemas.SegmentationSaved:
    request = segmentations.SaveRequest(
        series_uid=series_uid, filename=file.filename or "", based_on=based_on, description=description
    )
    try:
        data = file.file.read()  # a plain def: FastAPI runs it in a worker thread, where a blocking read is fine
    finally:
        file.file.close()
    saved = segmentations.save_segmentation(datastore, principal, request, data)
    return schemas.SegmentationSaved.model_validate(saved)


class InterpolationRequest(BaseModel):
    series_uid: DicomUid
    seg_uid: DicomUid
    segment_number: int = Field(ge=1, le=65535)


@router.post(
    "/segmentations/interpolate",
    status_code=201,
    summary="Fill the slices between segmented slices of one segment; stores a new SEMIAUTOMATIC SEG",
)
def interpolate(
    body: InterpolationRequest, principal: CurrentPrincipal, datastore: CurrentDatastore
) -> schemas.SegmentationInterpolated:
    made = segmentations.interpolate_segmentation(
        datastore, principal, body.series_uid, body.seg_uid, body.segment_number
    )
    return schemas.SegmentationInterpolated.model_validate(made)


@router.delete(
    "/segmentations/{seg_uid}",
    summary="Delete a SEG from Orthanc and the platform (its author, or an admin of its cohort)",
)
def delete_segmentation(seg_uid: UidPath, principal: CurrentPrincipal, datastore: CurrentDatastore) -> schemas.Deleted:
    segmentations.delete_segmentation(datastore, principal, seg_uid)
    return schemas.Deleted(status="deleted", seg_uid=seg_uid)


class Review(BaseModel):
    status: str = Field(pattern="^(accepted|rejected)$")
    comment: str = Field(default="", max_length=2048)


@router.post(
    "/segmentations/{seg_uid}/review",
    status_code=201,
    summary="Record your review of a SEG (accepted or rejected, with a comment)",
)
def review(seg_uid: UidPath, body: Review, principal: CurrentPrincipal) -> schemas.Review:
    return schemas.Review.model_validate(
        segmentations.review_segmentation(principal, seg_uid, body.status, body.comment)
    )
