"""The ASGI app: MONAI Label's server with the awesomme app, plus our routers under ``/api`` and ``/dicom-web``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware import Middleware
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from awesomme.core.config import get_settings
from awesomme.monailabel_env import configure_monailabel

configure_monailabel(get_settings())

from monailabel.app import app as monailabel_app  # noqa: E402 - needs the environment set above
from monailabel.config import settings as monailabel_settings  # noqa: E402
from monailabel.endpoints import info as monailabel_info  # noqa: E402
from monailabel.endpoints import ohif as monailabel_ohif  # noqa: E402
from monailabel.endpoints import proxy as monailabel_proxy  # noqa: E402
from monailabel.endpoints.user.auth import User as MonaiLabelUser  # noqa: E402
from monailabel.endpoints.user.auth import get_current_user  # noqa: E402
from monailabel.interfaces.exception import MONAILabelException  # noqa: E402

from awesomme.api import dicomweb  # noqa: E402
from awesomme.api.access import AccessMiddleware  # noqa: E402
from awesomme.api.deps import CurrentPrincipal  # noqa: E402
from awesomme.api.input_guard import (  # noqa: E402
    FiniteJsonMiddleware,
    http_error,
    monailabel_error,
    validation_error,
)
from awesomme.api.offload import off_the_event_loop  # noqa: E402
from awesomme.api.routes import (  # noqa: E402
    agreement,
    app_info,
    audit,
    auth,
    classification,
    cohorts,
    docs,
    exports,
    health,
    imports,
    invites,
    jobs,
    login,
    models,
    monailabel_auth,
    radiomics,
    scores,
    segmentations,
    tokens,
    users,
    viewer,
    viewer_files,
)
from awesomme.api.routes import batches as batch_routes  # noqa: E402
from awesomme.api.routes import pacs as pacs_routes  # noqa: E402
from awesomme.api.security_headers import SecurityHeadersMiddleware  # noqa: E402
from awesomme.core.errors import AwesommeError, TooManyRequests, Unauthorized  # noqa: E402

__all__ = ["app", "create_app"]


async def _awesomme_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AwesommeError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthorized) else None
    if isinstance(error, TooManyRequests):
        headers = {"Retry-After": str(error.retry_after_s)}
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


def _monailabel_user(principal: CurrentPrincipal) -> MonaiLabelUser:
    """MONAI Label's routes ask for their user through this dependency: ours answers (its own check is broken).

    The access middleware has already authorised the call; MONAI Label's role names are given so its own
    role checks, if ever switched on, agree.
    """
    roles = [monailabel_settings.MONAI_LABEL_AUTH_ROLE_USER, monailabel_settings.MONAI_LABEL_AUTH_ROLE_ANNOTATOR]
    if principal.platform_admin:
        roles += [monailabel_settings.MONAI_LABEL_AUTH_ROLE_REVIEWER, monailabel_settings.MONAI_LABEL_AUTH_ROLE_ADMIN]
    return MonaiLabelUser(username=principal.username, roles=roles)


_REPLACED_PATHS = ("/reload", "/", "/docs")


def _drop_replaced_routes(app: FastAPI) -> None:
    """MONAI Label's DICOM proxy reaches the store unfiltered, and /reload clears its caches for anyone: both go.
    Its /info/ gives way to ours (``api/routes/app_info.py``), its documentation pages (scripts from a public CDN) to
    ours (``api/routes/docs.py``), its viewer files to ours (``api/routes/viewer_files.py``: no font from another host).

    The bundled viewer's ``/proxy/dicom/...`` calls are answered by our cohort-filtered DICOMweb instead.
    """
    replaced = (monailabel_proxy.router, monailabel_info.router, monailabel_ohif.router)
    app.router.routes[:] = [
        route
        for route in app.router.routes
        if getattr(route, "original_router", None) not in replaced
        and getattr(route, "path", None) not in _REPLACED_PATHS
    ]


def create_app() -> FastAPI:
    _own_origin_only(monailabel_app)
    _drop_replaced_routes(monailabel_app)
    jobs.replace_monailabel_listings()  # its job listings give way to ours, filtered per cohort admin
    off_the_event_loop(monailabel_app)  # its endpoints' work would hold the event loop
    # FastAPI refuses larger request bodies with a 413 on every route, ours and MONAI Label's alike.
    monailabel_app.max_body_size = get_settings().upload_max_bytes
    routers = (health, auth, users, tokens, cohorts, invites, models, segmentations, audit)
    analysis = (radiomics, classification, scores, agreement, exports)
    for module in (*routers, *analysis):
        monailabel_app.include_router(module.router, prefix="/api")
    monailabel_app.include_router(imports.router, prefix="/api")
    monailabel_app.include_router(batch_routes.router, prefix="/api")
    monailabel_app.include_router(pacs_routes.router, prefix="/api")
    monailabel_app.include_router(app_info.router)
    monailabel_app.include_router(jobs.router)
    monailabel_app.include_router(monailabel_auth.router)
    monailabel_app.include_router(login.router)
    monailabel_app.include_router(docs.router)
    monailabel_app.include_router(viewer_files.router)
    monailabel_app.include_router(viewer.router)
    monailabel_app.include_router(dicomweb.router, prefix="/dicom-web")
    monailabel_app.include_router(dicomweb.proxy_router, prefix="/proxy/dicom")
    monailabel_app.add_exception_handler(AwesommeError, _awesomme_error)
    # Validation errors and HTTP errors quote at most a short excerpt of the client's input.
    monailabel_app.add_exception_handler(RequestValidationError, validation_error)
    monailabel_app.add_exception_handler(HTTPException, http_error)
    monailabel_app.add_exception_handler(MONAILabelException, monailabel_error)
    monailabel_app.dependency_overrides[get_current_user] = _monailabel_user
    # Innermost, so CORS answers preflights and adds its headers to our refusals too.
    monailabel_app.user_middleware.append(Middleware(AccessMiddleware))
    # Inside the access check (refusals are journaled): a JSON body with NaN or Infinity gets a 422, never a 500.
    monailabel_app.user_middleware.append(Middleware(FiniteJsonMiddleware, max_bytes=get_settings().upload_max_bytes))
    # Outermost, so every answer (CORS preflights and refusals too) carries the security headers.
    monailabel_app.user_middleware.insert(0, Middleware(SecurityHeadersMiddleware))
    return monailabel_app


app = create_app()
