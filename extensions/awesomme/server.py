"""The ASGI app: MONAI Label's server with the awesomme app, plus our routers under ``/api`` and ``/dicom-web``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from awesomme.core.config import get_settings
from awesomme.monailabel_env import configure_monailabel

configure_monailabel(get_settings())

from monailabel.app import app as monailabel_app  # noqa: E402 - needs the environment set above

from awesomme.api.dicomweb import router as dicomweb_router  # noqa: E402
from awesomme.api.routes.auth import router as auth_router  # noqa: E402
from awesomme.api.routes.health import router as health_router  # noqa: E402
from awesomme.api.routes.segmentations import router as segmentations_router  # noqa: E402
from awesomme.core.errors import AwesommeError, Unauthorized  # noqa: E402

__all__ = ["app", "create_app"]


async def _awesomme_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AwesommeError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthorized) else None
    return JSONResponse({"detail": str(error)}, status_code=error.status_code, headers=headers)


def _own_origin_only(app: FastAPI) -> None:
    """MONAI Label allows any origin with credentials; allow only the platform's own.

    Set here rather than through MONAI_LABEL_CORS_ORIGINS, which breaks MONAI Label's training subprocess (it
    JSON-dumps its settings, and URL objects do not serialise).
    """
    settings = get_settings()
    for middleware in app.user_middleware:
        if middleware.cls is CORSMiddleware:
            middleware.kwargs["allow_origins"] = [f"http://{settings.host}:{settings.port}"]


def create_app() -> FastAPI:
    _own_origin_only(monailabel_app)
    # FastAPI refuses larger request bodies with a 413 on every route, ours and MONAI Label's alike.
    monailabel_app.max_body_size = get_settings().upload_max_bytes
    monailabel_app.include_router(health_router, prefix="/api")
    monailabel_app.include_router(auth_router, prefix="/api")
    monailabel_app.include_router(segmentations_router, prefix="/api")
    monailabel_app.include_router(dicomweb_router, prefix="/dicom-web")
    monailabel_app.add_exception_handler(AwesommeError, _awesomme_error)
    return monailabel_app


app = create_app()
