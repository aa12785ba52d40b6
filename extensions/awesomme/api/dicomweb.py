"""``/dicom-web``: DICOMweb (QIDO-RS, WADO-RS, STOW-RS) passed through to the private Orthanc.

Viewers and scripts never talk to Orthanc: only these resource paths go through, with our credentials added.
"""

from __future__ import annotations

import re

import httpx
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from awesomme.core.config import get_settings

router = APIRouter(tags=["dicomweb"])

# studies[/uid[/series[/uid[/instances[/uid[/frames/n|/metadata|/rendered]]]]]], and the series/instances searches.
# UIDs are digits joined by single dots, so no ".." can climb out of the DICOMweb root.
_UID = r"[0-9]+(?:\.[0-9]+)*"
_WORD = r"(?:series|instances|metadata|frames|rendered|thumbnail|bulkdata)"
_ALLOWED_PATH = re.compile(rf"^(?:studies|series|instances)(?:/{_UID}|/{_WORD})*$")
_FORWARDED_HEADERS = ("accept", "content-type")
_RETURNED_HEADERS = ("content-type", "content-length")


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
            )
        return cls.client


async def _forward(request: Request, path: str) -> StreamingResponse:
    if not _ALLOWED_PATH.match(path):
        raise HTTPException(404, f"not a DICOMweb resource: /{path}")
    headers = {name: request.headers[name] for name in _FORWARDED_HEADERS if name in request.headers}
    body = await request.body() if request.method == "POST" else None  # the app bounds its size
    client = _Upstream.get()
    upstream_request = client.build_request(
        request.method, "/" + path, params=request.query_params, headers=headers, content=body
    )
    try:
        upstream = await client.send(upstream_request, stream=True)
    except httpx.HTTPError as error:
        raise HTTPException(503, "the DICOM store is not reachable") from error
    returned = {name: upstream.headers[name] for name in _RETURNED_HEADERS if name in upstream.headers}
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=returned,
        background=BackgroundTask(upstream.aclose),
    )


@router.get("/{path:path}", summary="QIDO-RS and WADO-RS")
async def retrieve(path: str, request: Request) -> StreamingResponse:
    return await _forward(request, path)


@router.post("/{path:path}", summary="STOW-RS")
async def store(path: str, request: Request) -> StreamingResponse:
    if not re.fullmatch(rf"studies(?:/{_UID})?", path):
        raise HTTPException(405, "only /studies accepts STOW-RS")
    return await _forward(request, path)
