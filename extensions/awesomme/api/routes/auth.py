"""``/api/auth``: OAuth2 password and refresh grants, logout, and the public signing keys (JWKS)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Header
from fastapi.concurrency import run_in_threadpool

from awesomme.core.config import get_settings
from awesomme.core.db import session_scope
from awesomme.core.errors import InvalidInput, Unauthorized
from awesomme.services import identity

router = APIRouter(prefix="/auth", tags=["auth"])


def _grant(grant_type: str, username: str, password: str, refresh_token: str) -> dict[str, Any]:
    settings = get_settings()
    with session_scope() as session:
        if grant_type == "password":
            user = identity.authenticate(session, username, password)
            if user is None:
                raise Unauthorized("wrong username or password, or the account is disabled")
            return identity.issue_tokens(session, settings, user).as_oauth2()
        if grant_type == "refresh_token":
            return identity.refresh_tokens(session, settings, refresh_token).as_oauth2()
    raise InvalidInput(f"grant_type {grant_type!r} is not supported: use password or refresh_token")


@router.post("/token", summary="OAuth2 token endpoint (password and refresh_token grants); open to anyone")
async def token(
    grant_type: Annotated[str, Form()] = "password",
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    refresh_token: Annotated[str, Form(max_length=256)] = "",
) -> dict[str, Any]:
    return await run_in_threadpool(_grant, grant_type, username, password, refresh_token)


def _bearer(authorization: str | None) -> str:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not value:
        raise Unauthorized("an Authorization: Bearer token is required")
    return value


def _logout(access_token: str, refresh_token: str | None) -> None:
    settings = get_settings()
    with session_scope() as session:
        identity.user_for_token(session, settings, access_token)
        identity.logout(session, settings, access_token, refresh_token)


@router.post("/logout", summary="Revoke this access token (and a refresh token); the token's own user")
async def logout(
    authorization: Annotated[str | None, Header()] = None,
    refresh_token: Annotated[str | None, Form(max_length=256)] = None,
) -> dict[str, str]:
    await run_in_threadpool(_logout, _bearer(authorization), refresh_token)
    return {"status": "logged out"}


def _jwks() -> dict[str, Any]:
    with session_scope() as session:
        return {"keys": list(identity.public_keys(session, get_settings()).values())}


@router.get("/jwks", summary="Public keys that verify access tokens (JWKS); open to anyone")
async def jwks() -> dict[str, Any]:
    return await run_in_threadpool(_jwks)
