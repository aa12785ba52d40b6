"""Invite codes: cohort admins create, list and revoke them; users join a cohort with one, newcomers register.

Refused codes (unknown, expired, used up, revoked) count as failures per client address (and per user when
redeeming, per code when registering, where a taken username counts too): past ``invite_failures_per_window`` of
them the caller gets 429 until the window has passed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Literal, TypeVar

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from awesomme.api import schemas
from awesomme.api.deps import CurrentPrincipal, RowId, client_address
from awesomme.core import audit
from awesomme.core.config import get_settings
from awesomme.core.db import session_scope
from awesomme.core.security import hash_secret
from awesomme.core.visibility import Principal
from awesomme.services import invites
from awesomme.services.throttle import FailureThrottle, Limits

__all__ = ["code_throttle", "router"]

router = APIRouter(tags=["invites"], responses=schemas.errors(401, 403, 404, 409, 422, 429))
T = TypeVar("T")


class NewInvite(BaseModel):
    role: Literal["admin", "member"]
    max_uses: int = Field(default=1, ge=1, le=invites.MAX_USES)
    expires_in_hours: int = Field(ge=1, description="at most the platform's invite_max_hours")


class Redemption(BaseModel):
    code: str = Field(min_length=1, max_length=invites.CODE_MAX_LENGTH)


class Registration(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    code: str = Field(min_length=1, max_length=invites.CODE_MAX_LENGTH)


@lru_cache(maxsize=1)
def code_throttle() -> FailureThrottle:
    """Refused codes per address, and per user from all addresses (a user's own account: nobody else's)."""
    settings = get_settings()
    limit = settings.invite_failures_per_window
    limits = Limits(per_address=limit, per_subject=limit)
    return FailureThrottle("invite", settings.login_failure_window_s, limits, "invite code attempts")


def _throttled(user: str, address: str, attempt: Callable[[], T]) -> T:
    # Counted before the attempt (parallel guesses queue for the count), forgiven unless the code was refused.
    reservation = code_throttle().reserve(user, address)
    try:
        result = attempt()
    except invites.CodeRefused:
        raise
    except BaseException:
        code_throttle().forgive(reservation)
        raise
    code_throttle().forgive(reservation)
    return result


# -- cohort admins ----------------------------------------------------------------------------------------------
def _create(principal: Principal, cohort_id: int, new: NewInvite) -> schemas.InviteWithCode:
    with session_scope() as session:
        view, code = invites.create_invite(
            session, get_settings(), principal, cohort_id, new.role, new.max_uses, new.expires_in_hours
        )
        params = {"invite_id": view.id, "role": new.role, "max_uses": new.max_uses, "hours": new.expires_in_hours}
        audit.record(session, "invite.create", cohort=str(cohort_id), params=params)
    return schemas.InviteWithCode.model_validate({**view.as_json(), "code": code})


@router.post(
    "/cohorts/{cohort_id}/invites",
    status_code=status.HTTP_201_CREATED,
    summary="Create an invite code (shown once) for a role in the cohort; admins of the cohort, platform admins",
)
def create_invite(principal: CurrentPrincipal, cohort_id: RowId, new: NewInvite) -> schemas.InviteWithCode:
    return _create(principal, cohort_id, new)


def _list(principal: Principal, cohort_id: int) -> list[schemas.Invite]:
    with session_scope() as session:
        views = invites.list_invites(session, principal, cohort_id)
        return [schemas.Invite.model_validate(view.as_json()) for view in views]


@router.get(
    "/cohorts/{cohort_id}/invites",
    summary="The cohort's invite codes (never the codes themselves); admins of the cohort, platform admins",
)
def list_invites(principal: CurrentPrincipal, cohort_id: RowId) -> list[schemas.Invite]:
    return _list(principal, cohort_id)


def _revoke(principal: Principal, invite_id: int) -> schemas.Invite:
    with session_scope() as session:
        view = invites.revoke_invite(session, principal, invite_id).as_json()
        audit.record(session, "invite.revoke", cohort=str(view["cohort_id"]), params={"invite_id": invite_id})
        return schemas.Invite.model_validate(view)


@router.delete(
    "/invites/{invite_id}",
    summary="Revoke an invite code; admins of the code's cohort, platform admins",
)
def revoke_invite(principal: CurrentPrincipal, invite_id: RowId) -> schemas.Invite:
    return _revoke(principal, invite_id)


# -- code holders -----------------------------------------------------------------------------------------------
def _redeem(principal: Principal, code: str) -> schemas.Grant:
    with session_scope() as session:
        grant = invites.redeem(session, principal, code)
        audit.record(session, "invite.redeem", cohort=str(grant.cohort_id), params={"role": grant.role})
        return schemas.Grant(username=grant.username, cohort_id=grant.cohort_id, cohort=grant.cohort, role=grant.role)


@router.post("/invites/redeem", summary="Join a cohort with an invite code's role; any logged-in user")
def redeem(principal: CurrentPrincipal, body: Redemption, request: Request) -> schemas.Grant:
    user, address = str(principal.user_id), client_address(request)
    return _throttled(user, address, lambda: _redeem(principal, body.code))


def _register(registration: Registration) -> schemas.Grant:
    with session_scope() as session:
        grant = invites.register(
            session, get_settings(), registration.username, registration.password, registration.code
        )
        params = {"role": grant.role}
        audit.record(session, "user.register", cohort=str(grant.cohort_id), params=params, actor=grant.username)
    return schemas.Grant(username=grant.username, cohort_id=grant.cohort_id, cohort=grant.cohort, role=grant.role)


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    summary="Create an account holding an invite code's role in its cohort; open to anyone with a valid code",
)
def register(registration: Registration, request: Request) -> schemas.Grant:
    # Failures count per address and per code from all addresses: a taken username is one (one code must not
    # test usernames without limit).
    subject = f"code:{hash_secret(registration.code)[:32]}"
    return _throttled(subject, client_address(request), lambda: _register(registration))
