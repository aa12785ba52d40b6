"""``/api/auth``: OAuth2 password and refresh grants, browser sessions (the login page's cookie), logout, JWKS.

Every password check of the platform goes through ``check_password`` and its one throttle, kept in the database
(``awesomme.services.throttle``): failures count per username from one address, per address, and per username from
all addresses; whatever reached its limit is refused, even with the right password, until the window has passed.
One address's wrong guesses slow that address; only guesses from several addresses lock the account itself.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Header, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from awesomme.api import schemas
from awesomme.api.access import SESSION_COOKIE
from awesomme.api.deps import client_address
from awesomme.api.routes.login import DEFAULT_NEXT, safe_next
from awesomme.core import audit
from awesomme.core.config import Settings, get_settings
from awesomme.core.db import session_scope
from awesomme.core.errors import Forbidden, InvalidInput, TooManyRequests, Unauthorized
from awesomme.models import User
from awesomme.services import identity
from awesomme.services.throttle import FailureThrottle, Limits

__all__ = ["check_password", "login_throttle", "router", "token"]

router = APIRouter(prefix="/auth", tags=["auth"], responses=schemas.errors(401, 403, 422, 429))


@lru_cache(maxsize=1)
def login_throttle() -> FailureThrottle:
    """The one throttle of every password check (tokens, MONAI Label's /auth/token, the browser session, a
    password change)."""
    settings = get_settings()
    limits = Limits(
        per_address=settings.login_failures_per_address,
        per_subject_at_address=settings.login_failures_per_user,
        per_subject=settings.login_failures_per_account,
    )
    return FailureThrottle("login", settings.login_failure_window_s, limits, "logins")


def check_password(session: Session, settings: Settings, username: str, password: str, address: str) -> User:
    """The user, if the password is right and neither the username nor the address is locked out."""
    audit.note_actor(username)
    # Counted as a failure before the password check (parallel guesses queue for the count); a locked name learns
    # nothing. Forgiven in the caller's transaction when the password is right.
    attempt = login_throttle().reserve(username, address)
    user = identity.authenticate(session, username, password)
    if user is None:
        raise Unauthorized("wrong username or password, or the account is disabled")
    login_throttle().forgive(attempt, session)
    return user


# -- tokens -----------------------------------------------------------------------------------------------------
def _grant(grant_type: str, username: str, password: str, refresh_token: str, address: str) -> schemas.Tokens:
    settings = get_settings()
    with session_scope() as session:
        if grant_type == "password":
            user = check_password(session, settings, username, password, address)
            tokens = identity.issue_tokens(session, settings, user).as_oauth2()
            audit.record(session, "auth.token", params={"grant_type": grant_type})
            return schemas.Tokens(**tokens)
        if grant_type == "refresh_token":
            tokens = identity.refresh_tokens(session, settings, refresh_token).as_oauth2()
            audit.record(session, "auth.token", params={"grant_type": grant_type})
            return schemas.Tokens(**tokens)
    raise InvalidInput(f"grant_type {grant_type!r} is not supported: use password or refresh_token")


@router.post("/token", summary="OAuth2 token endpoint (password and refresh_token grants); open to anyone")
def token(
    request: Request,
    grant_type: Annotated[str, Form()] = "password",
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    refresh_token: Annotated[str, Form(max_length=256)] = "",
) -> schemas.Tokens:
    return _grant(grant_type, username, password, refresh_token, client_address(request))


def _bearer(authorization: str | None) -> str:
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not value:
        raise Unauthorized("an Authorization: Bearer token is required")
    return value


def _logout(access_token: str, refresh_token: str | None) -> None:
    settings = get_settings()
    with session_scope() as session:
        user = identity.user_for_token(session, settings, access_token)
        identity.logout(session, settings, access_token, refresh_token)
        audit.record(session, "auth.logout", actor=user.username)


@router.post("/logout", summary="Revoke this access token (and a refresh token); the token's own user")
def logout(
    authorization: Annotated[str | None, Header()] = None,
    refresh_token: Annotated[str | None, Form(max_length=256)] = None,
) -> schemas.StatusMessage:
    _logout(_bearer(authorization), refresh_token)
    return schemas.StatusMessage(status="logged out")


@router.get("/jwks", summary="Public keys that verify access tokens (JWKS); open to anyone")
def jwks() -> schemas.Jwks:
    with session_scope() as session:
        return schemas.Jwks(keys=list(identity.public_keys(session, get_settings()).values()))


# -- browser sessions -------------------------------------------------------------------------------------------
def _is_https(request: Request) -> bool:
    """The scheme the client used: uvicorn takes ``X-Forwarded-Proto`` from ``AWESOMME_TRUSTED_PROXIES`` only."""
    return request.url.scheme == "https"


def _same_origin(request: Request) -> bool:
    """A login form posted from another site would log the browser into someone else's account."""
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


def _set_cookie(response: Response, request: Request, secret: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=max_age,
        path="/",
        secure=_is_https(request),
        httponly=True,  # page scripts never see it
        samesite="strict",  # other sites' pages never send it
    )


def _open_session(username: str, password: str, address: str, previous: str | None) -> tuple[str, str]:
    settings = get_settings()
    with session_scope() as session:
        user = check_password(session, settings, username, password, address)
        if previous:  # a new login replaces the browser's old session
            identity.end_browser_session(session, previous)
        secret = identity.create_browser_session(session, settings, user)
        audit.record(session, "auth.session")
        return secret, user.username


@router.post(
    "/session",
    summary="Log a browser in (form post): sets the HttpOnly session cookie; open to anyone",
    response_model=schemas.BrowserSession,
    responses={303: {"description": "to `next` (or back to /login) when the client accepts text/html"}},
)
def open_session(
    request: Request,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next_page: Annotated[str, Form(alias="next", max_length=2048)] = DEFAULT_NEXT,
) -> Response:
    if not _same_origin(request):
        raise Forbidden("cross-site login refused")
    browser = "text/html" in request.headers.get("accept", "")
    target = safe_next(next_page)
    previous = request.cookies.get(SESSION_COOKIE)
    try:
        secret, name = _open_session(username, password, client_address(request), previous)
    except (Unauthorized, TooManyRequests) as error:
        if not browser:
            raise
        reason = "throttled" if isinstance(error, TooManyRequests) else "1"
        # The answer is a redirect, not an error status: journal the refusal here.
        audit.record_alone("auth.session", audit.Outcome.DENIED, params={"reason": reason})
        return RedirectResponse(f"/login?{urlencode({'error': reason, 'next': target})}", status_code=303)
    ttl = get_settings().session_ttl_s
    response: Response = (
        RedirectResponse(target, status_code=303) if browser else JSONResponse({"username": name, "expires_in": ttl})
    )
    _set_cookie(response, request, secret, ttl)
    return response


def _end_session(secret: str) -> None:
    with session_scope() as session:
        identity.end_browser_session(session, secret)
        audit.record(session, "auth.session.end")


@router.delete(
    "/session",
    summary="Log this browser out: ends the cookie's session, clears it; open to anyone",
    response_model=schemas.StatusMessage,
)
def close_session(request: Request) -> Response:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        _end_session(secret)
    response = JSONResponse({"status": "logged out"})
    response.delete_cookie(SESSION_COOKIE, path="/", secure=_is_https(request), httponly=True, samesite="strict")
    return response
