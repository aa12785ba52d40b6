"""`/api/classification` and `/api/predictions`: computer-aided diagnosis and prognosis."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from awesomme.api import schemas
from awesomme.api.deps import SQL_INT_MAX, CurrentPrincipal, CurrentVisibility, DbSession, RowId, UidQuery
from awesomme.core import audit
from awesomme.core.db import session_scope
from awesomme.core.errors import InvalidInput
from awesomme.core.visibility import Principal, Visibility
from awesomme.inference.registry import get_registry
from awesomme.models import Cohort, Prediction
from awesomme.services import predictions
from awesomme.services.prediction_reports import report_csv, report_html

router = APIRouter(tags=["classification"], responses=schemas.errors(401, 403, 404, 409, 413, 422))

_REPORT_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class PredictFromFeatureSet(BaseModel):
    feature_set_id: int = Field(ge=1, le=SQL_INT_MAX)


# The body is read by hand (JSON or multipart): its two shapes are documented here.
_PREDICT_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": PredictFromFeatureSet.model_json_schema()},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "cohort"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "/api/radiomics/{id}.csv layout"},
                    "cohort": {"type": "string", "description": "id or name of the cohort the CSV belongs to"},
                },
            }
        },
    },
}


@router.get("/classification/models", summary="Classification models you may run: labels and input schema")
def list_models(principal: CurrentPrincipal, session: DbSession) -> list[schemas.ClassificationModel]:
    return [schemas.ClassificationModel(**model) for model in predictions.describe_models(session, principal)]


async def _upload(request: Request) -> tuple[str, bytes, str]:
    """(cohort, CSV bytes, file name) of a multipart upload with the fields ``cohort`` and ``file``."""
    try:
        form = await request.form(max_files=1, max_fields=4)
    except Exception as error:  # starlette raises on malformed multipart bodies and on too many parts
        raise InvalidInput(f"unreadable multipart form: {error}") from None
    upload, cohort = form.get("file"), form.get("cohort")
    if not isinstance(upload, UploadFile):
        raise InvalidInput("the form needs a 'file' field holding the CSV")
    if not isinstance(cohort, str) or not cohort.strip():
        raise InvalidInput("the form needs a 'cohort' field (id or name) the CSV's patient belongs to")
    content = await upload.read(predictions.CSV_MAX_BYTES + 1)
    return cohort, content, upload.filename or ""


def _answer(prediction: Prediction) -> schemas.Prediction:
    """The one JSON shape of a prediction, here as in the listing."""
    return schemas.Prediction(**predictions.prediction_as_json(prediction))


def _journal(prediction: Prediction, session: Any, cohort: str) -> None:
    audit.record(
        session,
        "prediction",
        target=str(prediction.id),
        cohort=cohort,
        params={"model": prediction.model_name, "version": prediction.model_version, "label": prediction.label},
    )


@router.post(
    "/classification/{model}/predict",
    status_code=status.HTTP_201_CREATED,
    summary="Predict from a feature set (JSON {feature_set_id}) or an uploaded CSV (multipart: file, cohort)",
    openapi_extra={"requestBody": _PREDICT_BODY},
)
async def predict(
    model: str, request: Request, principal: CurrentPrincipal, visibility: CurrentVisibility
) -> schemas.Prediction:
    # async: the body is read here, by hand (JSON or multipart); the work itself goes to a worker thread.
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        cohort, content, filename = await _upload(request)

        def from_csv() -> schemas.Prediction:
            with session_scope() as session:
                prediction = predictions.predict_from_csv(session, principal, model, cohort, content, filename)
                _journal(prediction, session, str(prediction.cohort_id))
                return _answer(prediction)

        return await run_in_threadpool(from_csv)
    try:
        body = PredictFromFeatureSet.model_validate_json(await request.body())
    except ValidationError as error:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in error.errors())
        raise InvalidInput(f'send JSON {{"feature_set_id": <id>}} or a multipart CSV upload ({reasons})') from None

    def from_feature_set() -> schemas.Prediction:
        with session_scope() as session:
            prediction = predictions.predict_from_feature_set(
                session, principal, visibility, model, body.feature_set_id
            )
            cohorts = predictions.cohorts_of_prediction(session, prediction)
            _journal(prediction, session, " ".join(map(str, sorted(cohorts))))
            return _answer(prediction)

    return await run_in_threadpool(from_feature_set)


@router.get("/predictions", summary="Predictions of a series in your cohorts, newest first")
def list_predictions(
    visibility: CurrentVisibility, session: DbSession, series_uid: UidQuery
) -> list[schemas.Prediction]:
    return [_answer(row) for row in predictions.list_predictions(session, visibility, series_uid)]


def _report(prediction_id: int, principal: Principal, visibility: Visibility, kind: str) -> str:
    with session_scope() as session:
        prediction = predictions.visible_prediction(session, principal, visibility, prediction_id)
        cohort = session.get(Cohort, prediction.cohort_id) if prediction.cohort_id else None
        name = cohort.name if cohort else None
        audit.record(
            session,
            "data.exported",
            target=str(prediction.id),
            cohort=" ".join(map(str, sorted(predictions.cohorts_of_prediction(session, prediction)))),
            params={"what": f"prediction report ({kind})", "model": prediction.model_name},
        )
        if kind == "csv":
            return report_csv(prediction, name)
        classifier = get_registry().classifiers.get(prediction.model_name)
        intended_use = classifier.config.intended_use if classifier else ""
        return report_html(prediction, name, intended_use)


@router.get(
    "/predictions/{prediction_id}.csv",
    response_class=schemas.CsvResponse,
    summary="A prediction's report as one CSV row",
    responses=schemas.text_errors(401, 403, 404, 409, 413, 422),
)
def prediction_csv(prediction_id: RowId, principal: CurrentPrincipal, visibility: CurrentVisibility) -> Response:
    text = _report(prediction_id, principal, visibility, "csv")
    headers = {**_REPORT_HEADERS, "Content-Disposition": f'attachment; filename="prediction-{prediction_id}.csv"'}
    return Response(text, media_type="text/csv; charset=utf-8", headers=headers)


@router.get(
    "/predictions/{prediction_id}.html",
    response_class=HTMLResponse,
    summary="A prediction's clinician-readable report",
    responses=schemas.text_errors(401, 403, 404, 409, 413, 422),
)
def prediction_html(prediction_id: RowId, principal: CurrentPrincipal, visibility: CurrentVisibility) -> HTMLResponse:
    text = _report(prediction_id, principal, visibility, "html")
    headers = {**_REPORT_HEADERS, "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
    return HTMLResponse(text, headers=headers)
