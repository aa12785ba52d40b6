"""``/api/health``: open to anyone, so monitors and load balancers need no account."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from monailabel.interfaces.utils.app import apps

from awesomme import __version__
from awesomme.api import schemas
from awesomme.core.db import database_answers
from awesomme.inference.registry import get_registry
from awesomme.orthanc.client import get_client

router = APIRouter(tags=["health"])


def _orthanc_answers() -> bool:
    try:
        get_client().system()
    except Exception:  # unreachable, refusing, or answering nonsense: not healthy
        return False
    return True


@router.get(
    "/health",
    summary="Platform health (no login needed)",
    response_model=schemas.Health,
    responses={503: {"model": schemas.Health, "description": "a part is down: `detail` names it"}},
)
def health() -> JSONResponse:
    checks = {"database": database_answers(), "orthanc": _orthanc_answers(), "app": bool(apps)}
    failing = [name for name, ok in checks.items() if not ok]
    body: dict[str, object] = {
        "status": "ok" if not failing else "unavailable",
        "version": __version__,
        "checks": checks,
    }
    if apps:
        registry = get_registry()
        body["models"] = {name: model.config.version for name, model in registry.models.items()}
        body["disabled_models"] = registry.problems  # a model that cannot load is off alone, the rest serves
        body["device"] = str(registry.device)  # where the networks run: cpu or cuda:<n>
    if failing:
        body["detail"] = "not available: " + ", ".join(failing)
    return JSONResponse(body, status_code=503 if failing else 200)
