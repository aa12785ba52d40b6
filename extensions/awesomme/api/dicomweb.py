"""``/dicom-web``: DICOMweb (QIDO-RS, WADO-RS, STOW-RS) in front of the private Orthanc, filtered by cohort.

Viewers and scripts never talk to Orthanc: only DICOMweb resource paths go through, with our credentials added.
Platform admins get Orthanc's answers as they are (streamed). Everyone else gets searches filtered to their
cohorts' studies and series, retrievals only of what they may see (404 otherwise), and STOW only into a cohort
they administer (``?cohort=<id>``), the stored series joining it. MONAI Label's bundled viewer reaches the same
code through ``/proxy/dicom/{qido,wado}/...``.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
import pydicom
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from pydicom.errors import InvalidDicomError
from requests_toolbelt.multipart.decoder import MultipartDecoder, NonMultipartContentTypeException
from starlette.background import BackgroundTask

from awesomme.api.deps import CurrentPrincipal, CurrentVisibility
from awesomme.core import audit
from awesomme.core.config import get_settings
from awesomme.core.db import row_id, session_scope
from awesomme.core.errors import Forbidden, InvalidInput, NotFound
from awesomme.models import Cohort
from awesomme.orthanc.client import KEEPALIVE_EXPIRY_S, get_client
from awesomme.services.cohorts import attach_stored
from awesomme.services.visibility import Principal, Visibility

router = APIRouter(tags=["dicomweb"])
proxy_router = APIRouter(include_in_schema=False)

# studies[/uid[/series[/uid[/instances[/uid[/frames/n|/metadata|/rendered]]]]]], and the series/instances searches.
# UIDs are digits joined by single dots, so no ".." can climb out of the DICOMweb root.
_UID = r"[0-9]+(?:\.[0-9]+)*"
_WORD = r"(?:series|instances|metadata|frames|rendered|thumbnail|bulkdata)"
_ALLOWED_PATH = re.compile(rf"^(?:studies|series|instances)(?:/{_UID}|/{_WORD})*$")
_SEARCHES = re.compile(
    rf"^(?:studies|series|instances|studies/{_UID}/(?:series|instances)|studies/{_UID}/series/{_UID}/instances)$"
)
_FORWARDED_HEADERS = ("accept", "content-type")
_RETURNED_HEADERS = ("content-type", "content-length")
STUDY_UID_TAG = "0020000D"
SERIES_UID_TAG = "0020000E"
REFERENCED_SOP_SEQUENCE = "00081199"
RETRIEVE_URL = "00081190"


class _Upstream:
    client: httpx.AsyncClient | None = None

    @classmethod
    def get(cls) -> httpx.AsyncClient:
        if cls.client is None:
            settings = get_settings()
            cls.client = httpx.AsyncClient(
                base_url=settings.dicomweb_url,
                auth=(settings.orthanc_username, settings.orthanc_password),
                timeout=settings.orthanc_timeout_s,
                limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S),
            )
        return cls.client


@dataclass(frozen=True)
class Target:
    """The study and series a DICOMweb path names, if any."""

    study: str | None
    series: str | None

    @classmethod
    def of(cls, path: str) -> Target:
        parts = path.split("/")
        study = parts[1] if len(parts) > 1 and parts[0] == "studies" else None
        series = parts[3] if study and len(parts) > 3 and parts[2] == "series" else None
        return cls(study, series)


def _headers(request: Request) -> dict[str, str]:
    return {name: request.headers[name] for name in _FORWARDED_HEADERS if name in request.headers}


async def _send(request: Request, path: str, params: Any, body: bytes | None, stream: bool) -> httpx.Response:
    client = _Upstream.get()
    upstream_request = client.build_request(
        request.method, "/" + path, params=params, headers=_headers(request), content=body
    )
    try:
        try:
            return await client.send(upstream_request, stream=stream)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):  # Orthanc closed the idle connection
            return await client.send(upstream_request, stream=stream)
    except httpx.HTTPError as error:
        raise HTTPException(503, "the DICOM store is not reachable") from error


def _returned(upstream: httpx.Response) -> dict[str, str]:
    return {name: upstream.headers[name] for name in _RETURNED_HEADERS if name in upstream.headers}


async def _stream(request: Request, path: str, params: Any = None) -> StreamingResponse:
    upstream = await _send(request, path, request.query_params if params is None else params, None, stream=True)
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=_returned(upstream),
        background=BackgroundTask(upstream.aclose),
    )


def _value(item: dict[str, Any], tag: str) -> str:
    values = item.get(tag, {}).get("Value") or [""]
    return str(values[0])


def _keep(item: dict[str, Any], visibility: Visibility, target: Target) -> bool:
    study = _value(item, STUDY_UID_TAG) or target.study or ""
    series = _value(item, SERIES_UID_TAG) or target.series
    return visibility.sees_series(study, series) if series else visibility.sees_study(study)


async def _filtered_search(request: Request, path: str, visibility: Visibility) -> Response:
    """Search everything the query asks, then keep what the caller sees; paging applies to what is kept."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in ("limit", "offset")]
    params += [("includefield", STUDY_UID_TAG), ("includefield", SERIES_UID_TAG)] if path != "studies" else []
    upstream = await _send(request, path, params, None, stream=False)
    if upstream.status_code != 200 or not upstream.content:
        return Response(upstream.content, status_code=upstream.status_code, headers=_returned(upstream))
    target = Target.of(path)
    kept = [item for item in upstream.json() if _keep(item, visibility, target)]
    offset = int(request.query_params.get("offset", 0) or 0)
    limit = request.query_params.get("limit")
    kept = kept[offset : offset + int(limit)] if limit else kept[offset:]
    return Response(json.dumps(kept), media_type="application/dicom+json")


def _check_retrieval(path: str, visibility: Visibility) -> None:
    target = Target.of(path)
    if target.study is None:
        raise NotFound(f"not a DICOMweb resource: /{path}")
    if target.series is not None:
        allowed = visibility.sees_series(target.study, target.series)
    else:
        allowed = visibility.sees_whole_study(target.study)
    if not allowed:
        raise NotFound("no such study or series in your cohorts")


async def _retrieve(request: Request, path: str, visibility: Visibility) -> Response:
    if not _ALLOWED_PATH.match(path):
        raise HTTPException(404, f"not a DICOMweb resource: /{path}")
    if _SEARCHES.match(path):
        if visibility.everything:
            return await _stream(request, path)
        if Target.of(path).study and not visibility.sees_study(str(Target.of(path).study)):
            return Response("[]", media_type="application/dicom+json")
        return await _filtered_search(request, path, visibility)
    if not visibility.everything:
        _check_retrieval(path, visibility)
    study = Target.of(path).study
    if study:
        await run_in_threadpool(audit.record_view, study)
    return await _stream(request, path)


@router.get("/{path:path}", summary="QIDO-RS and WADO-RS, within your cohorts")
async def retrieve(path: str, request: Request, visibility: CurrentVisibility) -> Response:
    return await _retrieve(request, path, visibility)


@proxy_router.get("/{path:path}")
async def proxy(path: str, request: Request, visibility: CurrentVisibility) -> Response:
    """MONAI Label's viewer asks ``/proxy/dicom/qido/...`` and ``/proxy/dicom/wado/...``."""
    service, _, rest = path.partition("/")
    if service not in ("qido", "wado"):
        raise HTTPException(404, "only qido and wado go through the proxy")
    return await _retrieve(request, rest, visibility)


# -- STOW-RS ----------------------------------------------------------------------------------------------------
def _stored_uids(body: bytes, content_type: str) -> set[tuple[str, str]]:
    """(study, series) of every instance in a STOW request, read before anything is stored."""
    try:
        parts = MultipartDecoder(body, content_type).parts
    except (NonMultipartContentTypeException, ValueError, IndexError) as error:
        raise InvalidInput("a STOW-RS request is multipart/related with one DICOM file per part") from error
    uids = set()
    for part in parts:
        try:
            header = pydicom.dcmread(
                io.BytesIO(part.content),
                stop_before_pixels=True,
                specific_tags=["StudyInstanceUID", "SeriesInstanceUID"],
            )
            uids.add((str(header.StudyInstanceUID), str(header.SeriesInstanceUID)))
        except (InvalidDicomError, AttributeError, EOFError, ValueError) as error:
            raise InvalidInput(
                "a part of the STOW-RS request is not a DICOM file with study and series UIDs"
            ) from error
    return uids


def _check_stow(
    principal: Principal, visibility: Visibility, cohort: str | None, body: bytes, content_type: str
) -> tuple[int | None, set[tuple[str, str]]]:
    """The cohort the stored series join; refuses writing into studies or series of other cohorts."""
    if cohort is None:
        if principal.platform_admin:
            return None, set()
        raise InvalidInput("name the cohort the data goes into: /dicom-web/studies?cohort=<id>")
    cohort_id = row_id(cohort)
    if cohort_id is None:
        raise InvalidInput("cohort must be a cohort id")
    with session_scope() as session:
        if session.get(Cohort, cohort_id) is None or principal.role_in(cohort_id) is None:
            raise NotFound(f"no cohort {cohort}")
    if not principal.administers(cohort_id):
        raise Forbidden(f"only an admin of cohort {cohort} may store data into it")
    uids = _stored_uids(body, content_type)
    orthanc = get_client()
    for study, series in uids:
        if orthanc.study_exists(study) and not visibility.sees_study(study):
            raise Forbidden(f"study {study} exists outside your cohorts")
        try:
            orthanc.series_state(series)
        except NotFound:
            continue
        if not visibility.sees_series(study, series):
            raise Forbidden(f"series {series} exists outside your cohorts")
    return cohort_id, uids


def _join(cohort_id: int, username: str, reply: dict[str, Any]) -> None:
    stored = set()
    for item in reply.get(REFERENCED_SOP_SEQUENCE, {}).get("Value", []):
        url = _value(item, RETRIEVE_URL)
        match = re.search(rf"/studies/({_UID})/series/({_UID})/instances/", url)
        if match:
            stored.add((match.group(1), match.group(2)))
    with session_scope() as session:
        attach_stored(session, cohort_id, username, stored)
        target = " ".join(sorted(series for _, series in stored))
        audit.record(session, "data.stored", target=target, cohort=str(cohort_id), params={"series": len(stored)})


@router.post("/{path:path}", summary="STOW-RS into a cohort you administer (?cohort=<id>)")
async def store(path: str, request: Request, principal: CurrentPrincipal, visibility: CurrentVisibility) -> Response:
    if not re.fullmatch(rf"studies(?:/{_UID})?", path):
        raise HTTPException(405, "only /studies accepts STOW-RS")
    body = await request.body()  # the app bounds its size
    cohort, _ = await run_in_threadpool(
        _check_stow,
        principal,
        visibility,
        request.query_params.get("cohort"),
        body,
        request.headers.get("content-type", ""),
    )
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cohort"]
    upstream = await _send(request, path, params, body, stream=False)
    if cohort is not None and upstream.status_code in (200, 202) and upstream.content:
        await run_in_threadpool(_join, cohort, principal.username, upstream.json())
    return Response(upstream.content, status_code=upstream.status_code, headers=_returned(upstream))
