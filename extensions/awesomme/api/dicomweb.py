"""``/dicom-web``: DICOMweb (QIDO-RS, WADO-RS, STOW-RS) in front of the private Orthanc, filtered by cohort.

Viewers and scripts never talk to Orthanc: only DICOMweb resource paths go through, with our credentials added.
Platform admins see everything. Everyone else gets searches narrowed to their cohorts' studies (the study list is
part of the query Orthanc answers, so a search costs what the caller can see, not what Orthanc holds) and then
filtered to their series, retrievals only of what they may see (404 otherwise), and STOW only into a cohort they
administer (``?cohort=<id>``), the stored series joining it (``services.stow``: what is checked is what is stored).
A search with ``?cohort=<id>`` (the viewer's study list per cohort) is narrowed to that cohort, which must be one of
the caller's (any, for platform admins): another is a 404, as an unknown one; the parameter never reaches Orthanc.
Every URL in an answer points at our ``/dicom-web`` under the host the client used; Orthanc's own error texts never
reach a client. A study or series whose UID Orthanc holds several times (under other patients or studies) is a 409,
never served half. MONAI Label's bundled viewer reaches the same code through ``/proxy/dicom/{qido,wado}/...``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from awesomme.api.deps import CurrentPrincipal, CurrentVisibility
from awesomme.core import audit
from awesomme.core.config import get_settings
from awesomme.core.db import session_scope
from awesomme.core.errors import AwesommeError, Conflict, NotFound
from awesomme.core.visibility import Principal, Visibility, visibility_of_cohorts
from awesomme.models import Cohort
from awesomme.orthanc.client import KEEPALIVE_EXPIRY_S, get_client
from awesomme.orthanc.multipart import MalformedRequest, excerpt
from awesomme.orthanc.visible import ambiguous_series_conflict
from awesomme.services import stow

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
_JSON_TYPES = ("application/dicom+json", "application/json")
STUDY_UID_TAG = "0020000D"
SERIES_UID_TAG = "0020000E"
# Which cohort a STOW goes into, from the caller and the request's ``?cohort=`` (``services.stow``).
CohortChoice = Callable[[Principal, str | None], int | None]
# A study list longer than this is asked in several queries (Orthanc refuses URLs much past 16 kB).
STUDIES_PER_QUERY = 200
MAX_PAGING = 10**9
# Our own search parameter (the cohort a search is narrowed to): read here, never forwarded to Orthanc.
COHORT_PARAM = "cohort"


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


# -- what goes back to the client --------------------------------------------------------------------------------
def _public_urls(value: Any, internal: str, public: str) -> Any:
    """``value`` with every URL under Orthanc's DICOMweb root moved under ours (RetrieveURL, BulkDataURI, ...)."""
    if isinstance(value, str):
        if value == internal or value.startswith(internal + "/"):
            return public + value[len(internal) :]
        return value
    if isinstance(value, list):
        return [_public_urls(item, internal, public) for item in value]
    if isinstance(value, dict):
        return {key: _public_urls(item, internal, public) for key, item in value.items()}
    return value


def public_root(request: Request) -> str:
    """Our DICOMweb root under the host the client used."""
    return str(request.base_url).rstrip("/") + "/dicom-web"


def _json_answer(request: Request, content: Any, status_code: int = 200) -> Response:
    public = _public_urls(content, get_settings().dicomweb_url.rstrip("/"), public_root(request))
    return Response(json.dumps(public), status_code=status_code, media_type="application/dicom+json")


def _refused_upstream(status_code: int) -> AwesommeError:
    """Orthanc's refusal in our words (its own texts can name its internals)."""
    if status_code == 404:
        return NotFound("no such DICOMweb resource")
    if 400 <= status_code < 500:
        error = AwesommeError(f"the DICOM store refused the request ({status_code})")
        error.status_code = status_code
        return error
    error = AwesommeError("the DICOM store could not answer")
    error.status_code = 502
    return error


async def _answer(request: Request, path: str, params: Any = None) -> Response:
    """Orthanc's answer: JSON with its URLs made ours, anything else (DICOM, frames) streamed as it comes."""
    upstream = await _send(request, path, request.query_params if params is None else params, None, stream=True)
    if upstream.status_code >= 400:
        await upstream.aclose()
        raise _refused_upstream(upstream.status_code)
    media_type = upstream.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in _JSON_TYPES:
        try:
            raw = await upstream.aread()
        finally:
            await upstream.aclose()
        if not raw.strip():
            return Response(status_code=upstream.status_code)
        try:
            content = json.loads(raw)
        except ValueError as error:
            raise _refused_upstream(502) from error
        return _json_answer(request, content, upstream.status_code)
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=_returned(upstream),
        background=BackgroundTask(upstream.aclose),
    )


# -- QIDO-RS ---------------------------------------------------------------------------------------------------
def _paging(request: Request) -> tuple[int, int | None]:
    """``offset`` and ``limit``: each at most once, a whole number; anything else is a 400 naming it."""
    values: list[int | None] = []
    for name in ("offset", "limit"):
        given = request.query_params.getlist(name)
        if len(given) > 1:
            raise MalformedRequest(f"{name} is given more than once")
        if given and not (given[0].isascii() and given[0].isdigit() and int(given[0]) <= MAX_PAGING):
            raise MalformedRequest(f"{name} must be a whole number from 0 to {MAX_PAGING}, not {excerpt(given[0])}")
        values.append(int(given[0]) if given else None)
    return values[0] or 0, values[1]


def _value(item: dict[str, Any], tag: str) -> str:
    values = item.get(tag, {}).get("Value") or [""]
    return str(values[0])


def _keep(item: dict[str, Any], visibility: Visibility, target: Target) -> bool:
    study = _value(item, STUDY_UID_TAG) or target.study or ""
    series = _value(item, SERIES_UID_TAG) or target.series
    return visibility.sees_series(study, series) if series else visibility.sees_study(study)


Search = Callable[[Sequence[tuple[str, str]]], Awaitable[list[dict[str, Any]]]]


def narrowed_queries(
    params: Sequence[tuple[str, str]], path: str, visibility: Visibility
) -> list[list[tuple[str, str]]]:
    """The Orthanc queries that answer a search for ``visibility``: a top-level search without its own study
    filter asks only for the visible studies (in lists of ``STUDIES_PER_QUERY``); none when nothing is visible."""
    params = [(k, v) for k, v in params if k not in ("limit", "offset")]
    params += [("includefield", STUDY_UID_TAG), ("includefield", SERIES_UID_TAG)] if path != "studies" else []
    if Target.of(path).study or any(key.lower() in ("studyinstanceuid", STUDY_UID_TAG.lower()) for key, _ in params):
        return [params]
    visible = sorted(visibility.studies | visibility.partial_studies)
    chunks = [visible[i : i + STUDIES_PER_QUERY] for i in range(0, len(visible), STUDIES_PER_QUERY)]
    return [[*params, ("StudyInstanceUID", ",".join(chunk))] for chunk in chunks]


async def filtered_search(
    search: Search, params: Sequence[tuple[str, str]], path: str, visibility: Visibility, paging: tuple[int, int | None]
) -> list[dict[str, Any]]:
    """What the caller sees of a search; paging applies to what is kept."""
    answers = await asyncio.gather(*(search(query) for query in narrowed_queries(params, path, visibility)))
    target = Target.of(path)
    kept = [item for answer in answers for item in answer if _keep(item, visibility, target)]
    offset, limit = paging
    return kept[offset : offset + limit] if limit is not None else kept[offset:]


def _search_params(request: Request) -> list[tuple[str, str]]:
    return [(key, value) for key, value in request.query_params.multi_items() if key != COHORT_PARAM]


def _cohort_choice(request: Request) -> int | None:
    """The cohort a search names (``?cohort=<id>``), if any: once, a whole number (400 otherwise)."""
    given = request.query_params.getlist(COHORT_PARAM)
    if not given:
        return None
    if len(given) > 1:
        raise MalformedRequest(f"{COHORT_PARAM} is given more than once")
    if not (given[0].isascii() and given[0].isdigit() and len(given[0]) <= 18):
        raise MalformedRequest(f"{COHORT_PARAM} must be a cohort's id (a whole number), not {excerpt(given[0])}")
    return int(given[0])


def cohort_scope(principal: Principal, cohort_id: int) -> Visibility:
    """What a search narrowed to ``cohort_id`` may show: that cohort's items, if it is one of the caller's (any
    existing one for platform admins); otherwise the same 404 as for a cohort that does not exist."""
    with session_scope() as session:
        allowed = principal.role_in(cohort_id) is not None or (
            principal.platform_admin and session.get(Cohort, cohort_id) is not None
        )
        if not allowed:
            raise NotFound(f"no cohort {cohort_id}")
        return visibility_of_cohorts(session, {cohort_id})


async def _filtered_search(request: Request, path: str, visibility: Visibility) -> Response:
    paging = _paging(request)

    async def search(query: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        upstream = await _send(request, path, list(query), None, stream=False)
        if upstream.status_code >= 400:
            raise _refused_upstream(upstream.status_code)
        answer = upstream.json() if upstream.content else []
        return answer if isinstance(answer, list) else []

    kept = await filtered_search(search, _search_params(request), path, visibility, paging)
    return _json_answer(request, kept)


# -- WADO-RS ---------------------------------------------------------------------------------------------------
def _check_retrieval(path: str, visibility: Visibility) -> None:
    target = Target.of(path)
    if target.study is None:
        raise NotFound(f"not a DICOMweb resource: /{excerpt(path)}")
    if target.series is not None:
        allowed = visibility.sees_series(target.study, target.series)
    else:
        allowed = visibility.sees_whole_study(target.study)
    if not allowed:
        raise NotFound("no such study or series in your cohorts")


def _check_unambiguous(target: Target, visibility: Visibility) -> None:
    """A series (or study) UID stored under several studies (patients) is reported, never served half."""
    orthanc = get_client()
    if target.series is not None and len(orthanc.lookup_all(target.series, "Series")) > 1:
        raise ambiguous_series_conflict(orthanc, visibility, target.series)
    if target.series is None and target.study and len(orthanc.lookup_all(target.study, "Study")) > 1:
        raise Conflict(f"study {target.study} exists under several patients in the DICOM store")


async def _retrieve(request: Request, path: str, principal: Principal, visibility: Visibility) -> Response:
    if not _ALLOWED_PATH.match(path):
        raise HTTPException(404, f"not a DICOMweb resource: /{excerpt(path)}")
    if _SEARCHES.match(path):
        cohort = _cohort_choice(request)
        if cohort is not None:
            visibility = await run_in_threadpool(cohort_scope, principal, cohort)
        if visibility.everything:
            _paging(request)
            return await _answer(request, path, _search_params(request))
        if Target.of(path).study and not visibility.sees_study(str(Target.of(path).study)):
            _paging(request)
            return Response("[]", media_type="application/dicom+json")
        return await _filtered_search(request, path, visibility)
    if not visibility.everything:
        _check_retrieval(path, visibility)
    target = Target.of(path)
    await run_in_threadpool(_check_unambiguous, target, visibility)
    if target.study:
        await run_in_threadpool(audit.record_view, target.study)
    return await _answer(request, path)


@router.get("/{path:path}", summary="QIDO-RS and WADO-RS, within your cohorts (a search: ?cohort=<id> for one)")
async def retrieve(path: str, request: Request, principal: CurrentPrincipal, visibility: CurrentVisibility) -> Response:
    return await _retrieve(request, path, principal, visibility)


@proxy_router.get("/{path:path}")
async def proxy(path: str, request: Request, principal: CurrentPrincipal, visibility: CurrentVisibility) -> Response:
    """MONAI Label's viewer asks ``/proxy/dicom/qido/...`` and ``/proxy/dicom/wado/...``."""
    service, _, rest = path.partition("/")
    if service not in ("qido", "wado"):
        raise HTTPException(404, "only qido and wado go through the proxy")
    return await _retrieve(request, rest, principal, visibility)


# -- STOW-RS ---------------------------------------------------------------------------------------------------
async def _store(
    request: Request, path: str, principal: Principal, visibility: Visibility, cohort: CohortChoice
) -> Response:
    """Checked, re-encoded and verified in ``services.stow``; refusals are 400/403/409/415/422 naming the problem."""
    match = re.fullmatch(rf"studies(?:/({_UID}))?", path)
    if match is None:
        raise HTTPException(405, "only /studies accepts STOW-RS")
    target = await run_in_threadpool(cohort, principal, request.query_params.get("cohort"))
    body = await request.body()  # the app bounds its size
    result = await run_in_threadpool(
        stow.store,
        principal,
        visibility,
        target,
        body,
        request.headers.get("content-type", ""),
        match.group(1),
    )
    return _json_answer(request, result.reply, result.status)


@router.post("/{path:path}", summary="STOW-RS into a cohort you administer (?cohort=<id>)")
async def store(path: str, request: Request, principal: CurrentPrincipal, visibility: CurrentVisibility) -> Response:
    return await _store(request, path, principal, visibility, stow.check_target_cohort)


@proxy_router.post("/{path:path}")
async def proxy_store(
    path: str, request: Request, principal: CurrentPrincipal, visibility: CurrentVisibility
) -> Response:
    """The bundled viewer's Upload posts to ``/proxy/dicom/wado/studies`` and names no cohort: the same STOW, into
    the one cohort the caller administers (``?cohort=`` still chooses)."""
    service, _, rest = path.partition("/")
    if service not in ("wado", "stow"):
        raise HTTPException(405, "only /proxy/dicom/wado/studies accepts STOW-RS")
    return await _store(request, rest, principal, visibility, stow.default_target_cohort)
