"""``/api/users/.../tokens``: personal access tokens for scripts: mine, and (platform admins) anyone's.

A personal access token cannot call these routes (the access table refuses it; ``_not_a_personal_token`` is the
second line): a leaked token must not mint, hide or keep alive other tokens.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import select

from awesomme.api import schemas
from awesomme.api.deps import CurrentPrincipal, DbSession, RowId
from awesomme.core import audit
from awesomme.core.config import get_settings
from awesomme.core.errors import Forbidden, NotFound, Unauthorized
from awesomme.core.visibility import Principal
from awesomme.models import PersonalAccessToken, User
from awesomme.services import personal_tokens

__all__ = ["router"]

router = APIRouter(prefix="/users", tags=["tokens"], responses=schemas.errors(401, 403, 404, 422))


def _in_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored in UTC): answered with their zone, as RFC 3339 wants."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_in_utc)]


class NewToken(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="what the token is for (shown in listings)")
    expires_in_days: int = Field(ge=1, description="at most AWESOMME_PAT_MAX_DAYS")
    cohort: int | None = Field(default=None, ge=1, le=2**63 - 1, description="act only in this cohort of mine")
    read_only: bool = Field(default=False, description="GET and HEAD, and POST /activelearning/, only")


class CreatedToken(BaseModel):
    id: int
    token: str = Field(description="shown this once: only its hash is stored")
    name: str
    expires_at: UtcDateTime
    cohort: int | None
    read_only: bool


class TokenInfo(BaseModel):
    id: int
    name: str
    created_at: UtcDateTime
    expires_at: UtcDateTime
    cohort: int | None
    read_only: bool
    state: str = Field(description="active, expired or revoked")
    revoked_at: UtcDateTime | None
    last_used_at: UtcDateTime | None = Field(description="to the minute: uses are recorded once a minute")
    last_used_from: str | None


def _info(record: PersonalAccessToken) -> TokenInfo:
    return TokenInfo(
        id=record.id,
        name=record.name,
        created_at=record.created_at,
        expires_at=record.expires_at,
        cohort=record.cohort_id,
        read_only=record.read_only,
        state=personal_tokens.state_of(record),
        revoked_at=record.revoked_at,
        last_used_at=record.last_used_at,
        last_used_from=record.last_used_from,
    )


def _not_a_personal_token(principal: Principal) -> None:
    if principal.personal_token is not None:
        raise Forbidden("a personal access token cannot manage tokens: log in with your password")


def _me(principal: Principal, session: DbSession) -> User:
    _not_a_personal_token(principal)
    user = session.get(User, principal.user_id)
    if user is None:
        raise Unauthorized("log in first")
    return user


def _platform_admin_sees(principal: Principal, session: DbSession, username: str) -> User:
    _not_a_personal_token(principal)
    if not principal.platform_admin:
        raise Forbidden("this needs: platform admin")
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username}")
    return user


Username = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]{1,64}$")]


@router.post(
    "/me/tokens",
    status_code=status.HTTP_201_CREATED,
    summary="Create a personal access token (shown once); any logged-in user, not with a personal access token",
)
def create_token(principal: CurrentPrincipal, new: NewToken, session: DbSession) -> CreatedToken:
    user = _me(principal, session)
    created = personal_tokens.create(
        session, get_settings(), user, principal, new.name, new.expires_in_days, new.cohort, new.read_only
    )
    record = created.record
    audit.record(
        session,
        "pat.create",
        target=f"pat:{record.id}",
        cohort=str(record.cohort_id or ""),
        params={"pat_id": record.id, "name": record.name, "days": new.expires_in_days, "read_only": new.read_only},
    )
    return CreatedToken(
        id=record.id,
        token=created.token,
        name=record.name,
        expires_at=record.expires_at,
        cohort=record.cohort_id,
        read_only=record.read_only,
    )


@router.get("/me/tokens", summary="My personal access tokens and their last use (never the token itself)")
def list_my_tokens(principal: CurrentPrincipal, session: DbSession) -> list[TokenInfo]:
    user = _me(principal, session)
    return [_info(record) for record in personal_tokens.list_for(session, user.id)]


@router.delete("/me/tokens/{token_id}", summary="Revoke one of my personal access tokens")
def revoke_my_token(principal: CurrentPrincipal, token_id: RowId, session: DbSession) -> TokenInfo:
    user = _me(principal, session)
    record = personal_tokens.revoke(session, user.id, token_id)
    audit.record(session, "pat.revoke", target=f"pat:{record.id}", params={"pat_id": record.id})
    return _info(record)


@router.get("/{username}/tokens", summary="A user's personal access tokens; platform admins")
def list_user_tokens(principal: CurrentPrincipal, session: DbSession, username: Username) -> list[TokenInfo]:
    user = _platform_admin_sees(principal, session, username)
    return [_info(record) for record in personal_tokens.list_for(session, user.id)]


@router.delete("/{username}/tokens/{token_id}", summary="Revoke a user's personal access token; platform admins")
def revoke_user_token(
    principal: CurrentPrincipal, username: Username, token_id: RowId, session: DbSession
) -> TokenInfo:
    user = _platform_admin_sees(principal, session, username)
    record = personal_tokens.revoke(session, user.id, token_id)
    audit.record(
        session,
        "pat.revoke",
        target=f"pat:{record.id}",
        params={"pat_id": record.id, "owner": user.username},
    )
    return _info(record)
