"""``/auth``: MONAI Label's own login routes, answered by our accounts.

The 3D Slicer module and ``monailabel.client.MONAILabelClient`` ask ``/auth/`` whether to log in, fetch a token
from ``/auth/token`` (the very handler of ``/api/auth/token``: same answer, same throttle) and send it back as
``<token_type> <access_token>``; ``/auth/token/valid`` tells them whether it still works.
"""

from __future__ import annotations

from fastapi import APIRouter

from awesomme.api import schemas
from awesomme.api.deps import CurrentPrincipal
from awesomme.api.routes import auth

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["auth (MONAI Label clients)"])


@router.get("/", summary="Whether MONAI Label clients must log in (always); open to anyone")
async def auth_enabled() -> schemas.AuthEnabled:
    # The shape of MONAI Label's answer; no external realm: tokens come from /auth/token.
    return schemas.AuthEnabled(enabled=True, client_id=None, realm=None)


router.add_api_route(
    "/token",
    auth.token,
    methods=["POST"],
    summary="OAuth2 token endpoint for MONAI Label clients, as POST /api/auth/token; open to anyone",
)


@router.get("/token/valid", summary="Whether the token sent is valid (401 if not); any logged-in user")
async def token_valid(principal: CurrentPrincipal) -> schemas.TokenOwner:
    return schemas.TokenOwner(username=principal.username, platform_admin=principal.platform_admin)
