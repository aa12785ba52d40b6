"""Invite codes: a cohort admin hands out a code carrying a cohort and a role; registering or joining with it
grants exactly that role.

A code is a 256-bit secret shown once and stored hashed, like a refresh token. Every function works inside the
caller's DB session (one transaction per action), so a refused account or membership never spends a use. The
routes throttle failed attempts: every refusal of the code itself is a ``CodeRefused``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from awesomme.core.config import Settings
from awesomme.core.errors import AwesommeError, Conflict, Gone, InvalidInput, NotFound
from awesomme.core.security import hash_secret, new_secret
from awesomme.core.visibility import Principal
from awesomme.models import Cohort, CohortRole, Invite, Membership
from awesomme.services import identity
from awesomme.services.cohorts import cohort_for_admin

__all__ = [
    "CODE_MAX_LENGTH",
    "MAX_USES",
    "CodeRefused",
    "Grant",
    "InviteView",
    "UnknownCode",
    "UnusableCode",
    "UsernameRefused",
    "create_invite",
    "list_invites",
    "redeem",
    "register",
    "revoke_invite",
]

MAX_USES = 1000  # a code is for a team or a class, not for the world
CODE_MAX_LENGTH = 128  # ours are 43 characters; anything much longer is not one of ours


class CodeRefused(AwesommeError):
    """The code itself was refused (unknown, expired, used up, revoked): a failed attempt, for throttling."""


class UnknownCode(CodeRefused, NotFound):
    pass


class UnusableCode(CodeRefused, Gone):
    pass


class UsernameRefused(CodeRefused, Conflict):
    """A code holder asked for a username that is taken: counted as a failure of the code, so one valid code cannot
    test usernames without limit."""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _state(invite: Invite, now: datetime) -> str:
    if invite.revoked:
        return "revoked"
    if _aware(invite.expires_at) <= now:
        return "expired"
    if invite.uses >= invite.max_uses:
        return "used up"
    return "active"


_REFUSALS = {
    "revoked": "this invite code was revoked",
    "expired": "this invite code has expired",
    "used up": "this invite code has been used up",
}


@dataclass(frozen=True)
class InviteView:
    """An invite as its cohort's admins see it: never the code (only its hash is kept)."""

    id: int
    cohort_id: int
    role: str
    max_uses: int
    uses: int
    expires_at: str
    state: str  # active | expired | used up | revoked
    created_by: str
    created_at: str

    @classmethod
    def of(cls, invite: Invite) -> InviteView:
        return cls(
            invite.id,
            invite.cohort_id,
            invite.role,
            invite.max_uses,
            invite.uses,
            _aware(invite.expires_at).isoformat(),
            _state(invite, _now()),
            invite.created_by,
            _aware(invite.created_at).isoformat(),
        )

    def as_json(self) -> dict[str, object]:
        return self.__dict__.copy()


@dataclass(frozen=True)
class Grant:
    """What a code gave: a role in a cohort."""

    username: str
    cohort_id: int
    cohort: str
    role: str


# -- admins -----------------------------------------------------------------------------------------------------
def create_invite(
    session: Session,
    settings: Settings,
    principal: Principal,
    cohort_id: int,
    role: str,
    max_uses: int,
    expires_in_hours: int,
) -> tuple[InviteView, str]:
    """A new code for ``cohort_id``; the code is returned here once and never again."""
    cohort_for_admin(session, principal, cohort_id)
    if role not in CohortRole.ALL:
        raise InvalidInput(f"role must be one of {', '.join(CohortRole.ALL)}")
    if not 1 <= max_uses <= MAX_USES:
        raise InvalidInput(f"max_uses must be between 1 and {MAX_USES}")
    if not 1 <= expires_in_hours <= settings.invite_max_hours:
        raise InvalidInput(f"expires_in_hours must be between 1 and {settings.invite_max_hours}")
    code = new_secret()
    now = _now()
    invite = Invite(
        code_hash=hash_secret(code),
        cohort_id=cohort_id,
        role=role,
        max_uses=max_uses,
        uses=0,
        expires_at=now + timedelta(hours=expires_in_hours),
        revoked=False,
        created_by=principal.username,
        created_at=now,
    )
    session.add(invite)
    session.flush()
    return InviteView.of(invite), code


def list_invites(session: Session, principal: Principal, cohort_id: int) -> list[InviteView]:
    cohort_for_admin(session, principal, cohort_id)
    query = select(Invite).where(Invite.cohort_id == cohort_id).order_by(Invite.created_at.desc(), Invite.id.desc())
    return [InviteView.of(invite) for invite in session.scalars(query)]


def revoke_invite(session: Session, principal: Principal, invite_id: int) -> InviteView:
    """Revoke a code (again is fine); outsiders of its cohort learn nothing, not even that it exists."""
    invite = session.get(Invite, invite_id)
    if invite is None or principal.role_in(invite.cohort_id) is None:
        raise NotFound(f"no invite {invite_id}")
    cohort_for_admin(session, principal, invite.cohort_id)
    invite.revoked = True
    session.flush()
    return InviteView.of(invite)


# -- code holders -----------------------------------------------------------------------------------------------
def _usable(session: Session, code: str) -> Invite:
    invite = None
    if code and len(code) <= CODE_MAX_LENGTH:
        invite = session.scalar(select(Invite).where(Invite.code_hash == hash_secret(code)))
    if invite is None:
        raise UnknownCode("unknown invite code")
    state = _state(invite, _now())
    if state != "active":
        raise UnusableCode(_REFUSALS[state])
    return invite


def _use(session: Session, invite: Invite, user_id: int, username: str) -> Grant:
    """Spend one use and grant the role; the guarded UPDATE keeps two concurrent uses from both taking the last."""
    spent = session.scalar(
        update(Invite)
        .where(Invite.id == invite.id, Invite.uses < Invite.max_uses, Invite.revoked.is_(False))
        .values(uses=Invite.uses + 1)
        .returning(Invite.uses)
    )
    if spent is None:
        raise UnusableCode(_REFUSALS["used up"])
    session.add(Membership(cohort_id=invite.cohort_id, user_id=user_id, role=invite.role))
    session.flush()
    cohort = session.get(Cohort, invite.cohort_id)
    return Grant(username, invite.cohort_id, cohort.name if cohort else "", invite.role)


def redeem(session: Session, principal: Principal, code: str) -> Grant:
    """A logged-in user joins the code's cohort with the code's role (already in it: 409, the use is kept)."""
    invite = _usable(session, code)
    membership = session.get(Membership, (invite.cohort_id, principal.user_id))
    if membership is not None:
        raise Conflict(f"you are already in this cohort (as {membership.role}): the code was not used")
    return _use(session, invite, principal.user_id, principal.username)


def register(session: Session, settings: Settings, username: str, password: str, code: str) -> Grant:
    """A new account holding exactly the code's role; a refused account (taken, weak) spends nothing."""
    invite = _usable(session, code)
    try:
        user = identity.create_user(session, settings, username, password)
    except Conflict:
        raise UsernameRefused(f"the username {username[:64]} is taken: choose another") from None
    return _use(session, invite, user.id, user.username)
