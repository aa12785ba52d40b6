"""``/ohif/``: MONAI Label's bundled viewer, served so that none of its files makes the browser reach another host.

The viewer as MONAI Label ships it loads its font from a public host (a ``<link>`` in ``index.html`` and
``@import url(https://...)`` in its stylesheets). The Content-Security-Policy already blocks those requests
(``api.security_headers.VIEWER_POLICY``); here the references themselves are taken out of the HTML and CSS we
serve, so the browser tries nothing and the viewer falls back to its local fonts. Any other path that names no
file of the viewer (a name no file can have included) gets ``index.html`` (the viewer routes itself), as MONAI
Label's route does; a path never leaves the viewer's folder.
"""

from __future__ import annotations

import mimetypes
import re
from functools import lru_cache
from pathlib import Path

import monailabel.endpoints
from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

__all__ = ["VIEWER_DIR", "router", "without_other_hosts"]

router = APIRouter(include_in_schema=False)

VIEWER_DIR = (Path(monailabel.endpoints.__file__).parent / "static" / "ohif").resolve()
# <link ... href="http(s)://..." ...>: stylesheets, preconnects and preloads of another host.
_LINK_ELSEWHERE = re.compile(rb"""<link\b[^>]*\bhref\s*=\s*["']?(?:https?:)?//[^>]*>""", re.IGNORECASE)
# @import url(http(s)://...); or @import "http(s)://...";
_IMPORT_ELSEWHERE = re.compile(rb"""@import\s+(?:url\(\s*)?["']?(?:https?:)?//[^;]*;""", re.IGNORECASE)
_REWRITTEN = {".html": _LINK_ELSEWHERE, ".css": _IMPORT_ELSEWHERE}


def without_other_hosts(content: bytes, suffix: str) -> bytes:
    """An HTML page without links to another host, or a stylesheet without imports from one."""
    pattern = _REWRITTEN.get(suffix)
    return pattern.sub(b"", content) if pattern else content


@lru_cache(maxsize=32)
def _rewritten(path: Path) -> bytes:
    return without_other_hosts(path.read_bytes(), path.suffix)


def _file(path: str) -> Path:
    index = VIEWER_DIR / "index.html"
    if not path:
        return index
    try:
        candidate = (VIEWER_DIR / path).resolve()
        found = candidate.is_relative_to(VIEWER_DIR) and candidate.is_file()
    except (ValueError, OSError):  # a name no file can have: a NUL byte, a name longer than the system allows
        return index
    return candidate if found else index


@router.get("/ohif/{path:path}")
def viewer_file(path: str) -> Response:  # a plain function: file reads run on a worker thread
    file = _file(path)
    media_type = mimetypes.guess_type(file.name, strict=False)[0] or "application/octet-stream"
    if file.suffix in _REWRITTEN:
        return Response(_rewritten(file), media_type=media_type)
    return FileResponse(file, media_type=media_type)
