"""``/api/users``: my account (who I am, my cohorts, my password) and, for platform admins, everyone's."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from awesomme.api import schemas
from awesomme.api.deps import CurrentPrincipal, DbSession, client_address
from awesomme.api.routes.auth import login_throttle
from awesomme.core import audit
from awesomme.core.config import get_settings
from awesomme.core.db import session_scope
from awesomme.core.errors import Forbidden, Unauthorized
from awesomme.core.visibility import Principal
from awesomme.models import Cohort, Membership, User
from awesomme.services import identity

__all__ = ["router"]

router = APIRouter(prefix="/users", tags=["users"], responses=schemas.errors(401, 403, 409, 422, 429))


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class NewUser(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    platform_admin: bool = False


def _account(user: User) -> schemas.Account:
    return schemas.Account(username=user.username, platform_admin=user.is_platform_admin, active=user.is_active)


@router.get("/me", summary="Who I am and my role in each of my cohorts; any logged-in user")
def me(principal: CurrentPrincipal, session: DbSession) -> schemas.Me:
    rows: list[tuple[int, str, str]]
    if principal.platform_admin:  # their own memberships (they act everywhere)
        memberships = session.execute(
            select(Cohort.id, Cohort.name, Membership.role)
            .join(Membership, Membership.cohort_id == Cohort.id)
            .where(Membership.user_id == principal.user_id)
            .order_by(Cohort.name)
        )
        rows = [(cohort_id, name, role) for cohort_id, name, role in memberships]
    else:  # the cohorts the caller acts in: a cohort's personal access token, that cohort only
        names = session.execute(
            select(Cohort.id, Cohort.name).where(Cohort.id.in_(principal.roles)).order_by(Cohort.name)
        )
        rows = [(cohort_id, name, principal.roles[cohort_id]) for cohort_id, name in names]
    cohorts = [schemas.CohortWithRole(id=cohort_id, name=name, role=role) for cohort_id, name, role in rows]
    return schemas.Me(username=principal.username, platform_admin=principal.platform_admin, cohorts=cohorts)


def _change_password(principal: Principal, change: PasswordChange, address: str) -> None:
    settings = get_settings()
    # A stolen token must not become a way to guess the password: wrong guesses count as failed logins.
    attempt = login_throttle().reserve(principal.username, address)
    try:
        with session_scope() as session:
            user = session.get(User, principal.user_id)
            if user is None:
                raise Unauthorized("log in first")
            identity.change_password(session, settings, user, change.current_password, change.new_password)
            audit.record(session, "user.password.change")
            login_throttle().forgive(attempt, session)
    except Unauthorized:
        raise  # a wrong current password: the attempt stays a failure
    except BaseException:
        login_throttle().forgive(attempt)  # refused for another reason (a weak new password): no guess
        raise


@router.post(
    "/me/password",
    summary="Change my password; every token and session of mine ends (log in again); any logged-in user",
)
def change_password(principal: CurrentPrincipal, change: PasswordChange, request: Request) -> schemas.StatusMessage:
    _change_password(principal, change, client_address(request))
    return schemas.StatusMessage(status="password changed: log in again")


def _platform_admin(principal: Principal) -> None:
    """Second line behind the route table: accounts are the platform admins' business."""
    if not principal.platform_admin:
        raise Forbidden("this needs: platform admin")


@router.get("", summary="All accounts; platform admins")
def list_users(principal: CurrentPrincipal, session: DbSession) -> list[schemas.Account]:
    _platform_admin(principal)
    return [_account(user) for user in identity.list_users(session)]


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an account; platform admins")
def create_user(principal: CurrentPrincipal, new: NewUser, session: DbSession) -> schemas.Account:
    _platform_admin(principal)
    user = identity.create_user(session, get_settings(), new.username, new.password, admin=new.platform_admin)
    audit.record(session, "user.create", target=user.username, params={"platform_admin": new.platform_admin})
    return _account(user)
