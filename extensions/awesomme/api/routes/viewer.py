"""``/viewer/``: the AWESOMME viewer (the pinned prebuilt OHIF, patched to live here) and ``/viewer-plugins/``: our
extension and mode, which it imports at run time.

``/viewer/app-config.js`` is written from the settings, never taken from the package (it names public demo
servers): one data source, our cohort-filtered ``/dicom-web``, and SEGs saved as bitmap (BINARY) segmentations in
Explicit VR Little Endian, what the platform's SEG reader takes. A path with no extension is one of the viewer's own
routes and gets ``index.html``; a missing file is a 404, never the page. A path never leaves its folder.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from awesomme.core.config import get_settings
from awesomme.core.errors import NotFound

__all__ = ["EXTENSION_FILE", "MODE_FILE", "app_config", "router"]

router = APIRouter(include_in_schema=False)

EXTENSION_FILE = "awesomme-extension.mjs"
MODE_FILE = "awesomme-mode.mjs"
# SEGs the viewer writes: bitmap (Segmentation Storage, BINARY) in Explicit VR Little Endian; highdicom 0.22 reads
# neither OHIF's default Label Map SEG nor its RLE.
_SEG_STORE = {"defaultMode": "bitmap", "transferSyntaxUID": "1.2.840.10008.1.2.1"}
_TYPES = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript"}
_NO_CACHE = {"Cache-Control": "no-cache"}
_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}


def app_config() -> str:
    """The viewer's ``window.config``: our data source only, our plugin, no demo server, no service worker."""
    settings = get_settings()
    config = {
        "routerBasename": "/viewer",
        "extensions": [f"/viewer-plugins/{EXTENSION_FILE}"],
        "modes": [f"/viewer-plugins/{MODE_FILE}"],
        "showStudyList": True,
        "maxNumberOfWebWorkers": settings.viewer_max_web_workers,
        "showCPUFallbackMessage": False,
        "showWarningMessageForCrossOrigin": False,
        "strictZSpacingForVolumeViewport": True,
        "defaultDataSourceName": "dicomweb",
        "investigationalUseDialog": {"option": "never"},
        "dataSources": [
            {
                "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
                "sourceName": "dicomweb",
                "configuration": {
                    "friendlyName": "AWESOMME",
                    "name": "awesomme",
                    "wadoUriRoot": "/dicom-web",
                    "qidoRoot": "/dicom-web",
                    "wadoRoot": "/dicom-web",
                    "qidoSupportsIncludeField": False,
                    "imageRendering": "wadors",
                    "thumbnailRendering": "wadors",
                    "enableStudyLazyLoad": True,
                    "supportsFuzzyMatching": False,
                    "supportsWildcard": True,
                    "staticWado": False,
                    "singlepart": "bulkdata,video",
                    "bulkDataURI": {"enabled": False},
                    "omitQuotationForMultipartRequest": True,
                    "dicomUploadEnabled": False,
                    "segmentation": {"store": _SEG_STORE},
                },
            }
        ],
    }
    return f"window.config = {json.dumps(config, indent=2)};\n"


def _inside(folder: Path, path: str) -> Path | None:
    """The file ``path`` names inside ``folder``, or None (absent, a folder, outside, or a name no file can have)."""
    try:
        root = folder.resolve()
        candidate = (root / path).resolve()
        return candidate if candidate.is_relative_to(root) and candidate.is_file() else None
    except (ValueError, OSError):
        return None


def _send(file: Path, headers: dict[str, str]) -> FileResponse:
    media_type = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name, strict=False)[0]
    return FileResponse(file, media_type=media_type or "application/octet-stream", headers=headers)


def _index(dist: Path) -> FileResponse:
    index = dist / "index.html"
    if not index.is_file():
        raise NotFound("the viewer is not installed: run `make run` (scripts/install_viewer.py)")
    return _send(index, _NO_CACHE)


@router.get("/viewer/app-config.js")
def viewer_config() -> Response:
    return Response(app_config(), media_type="text/javascript", headers=_NO_CACHE)


@router.get("/viewer/{path:path}")
def viewer_file(path: str) -> Response:  # a plain function: file reads run on a worker thread
    dist = get_settings().viewer_dist_dir
    last = path.rsplit("/", 1)[-1]
    if not path or "." not in last:
        return _index(dist)  # the viewer's own routes: /viewer/, /viewer/awesomme?StudyInstanceUIDs=...
    file = _inside(dist, path)
    if file is None or file.name.startswith("."):
        raise NotFound(f"no file {path!r} in the viewer")
    return _send(file, _NO_CACHE if file.name == "index.html" else _IMMUTABLE)


@router.get("/viewer-plugins/{path:path}")
def plugin_file(path: str) -> Response:
    file = _inside(get_settings().viewer_plugins_dir, path)
    if file is None or file.name.startswith("."):
        raise NotFound(f"no file {path!r} in the viewer's plugins: build them with `npm run build` in ohif-plugin/")
    return _send(file, _NO_CACHE)
