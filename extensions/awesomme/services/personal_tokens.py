"""Personal access tokens: long-lived bearer tokens for scripts, within limits.

A token is ``awpat_`` and 256 random bits; only its sha256 is stored, and it is shown once, at creation. It expires
(at most ``AWESOMME_PAT_MAX_DAYS`` days), may be revoked, and ends with its user's ``token_version`` (a password
reset or a suspension). A read-only token may only read (GET, HEAD) and ask for samples (``POST /activelearning/``);
a cohort token acts as its user in that one cohort only. A personal access token never manages tokens nor changes
the password: the access table marks those routes (``Rule.personal_tokens``).

Each use is journaled: every event a request by a token writes names it (``pat_id``), and a ``pat.use`` event,
written at most once per token and minute, covers the reads that journal nothing; the token's last use (time and
address) is updated with it.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from awesomme.core import audit
from awesomme.core.config import Settings
from awesomme.core.errors import InvalidInput, NotFound, Unauthorized
from awesomme.core.security import hash_secret
from awesomme.core.visibility import Principal
from awesomme.models import Cohort, CohortRole, PersonalAccessToken, User

__all__ = [
    "PAT_PREFIX",
    "READ_ONLY_METHODS",
    "TokenUse",
    "check_lifetime",
    "create",
    "hash_token",
    "is_personal_token",
    "list_for",
    "narrow",
    "new_token",
    "note_use",
    "read_only_allows",
    "revoke",
    "revoke_all",
    "state_of",
    "user_for_personal_token",
]

PAT_PREFIX = "awpat_"
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})
_SAMPLING_PREFIX = "/activelearning/"
NAME_MAX = 64


def new_token() -> str:
    """A new token: recognisable by its prefix (secret scanners, logs), 256 random bits."""
    return PAT_PREFIX + secrets.token_urlsafe(32)


def is_personal_token(bearer: str) -> bool:
    return bearer.startswith(PAT_PREFIX)


def hash_token(token: str) -> str:
    """Random enough that a fast hash is the right one (as refresh tokens)."""
    return hash_secret(token)


def check_lifetime(days: int, settings: Settings) -> timedelta:
    if days < 1:
        raise InvalidInput("expires_in_days must be at least 1")
    if days > settings.pat_max_days:
        raise InvalidInput(
            f"expires_in_days may be at most {settings.pat_max_days} (AWESOMME_PAT_MAX_DAYS) for a personal token"
        )
    return timedelta(days=days)


def read_only_allows(method: str, path: str) -> bool:
    """What a read-only token may call: reads, and asking active learning for the next sample."""
    return method.upper() in READ_ONLY_METHODS or (method.upper() == "POST" and path.startswith(_SAMPLING_PREFIX))


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def state_of(record: PersonalAccessToken, now: datetime | None = None) -> str:
    if record.revoked_at is not None:
        return "revoked"
    return "expired" if _aware(record.expires_at) <= (now or _now()) else "active"


@dataclass(frozen=True)
class Created:
    record: PersonalAccessToken
    token: str


def create(
    session: Session,
    settings: Settings,
    user: User,
    principal: Principal,
    name: str,
    days: int,
    cohort_id: int | None = None,
    read_only: bool = False,
) -> Created:
    """A new token of ``user`` (whose roles ``principal`` holds); a cohort token needs a role in that cohort."""
    name = name.strip()
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise InvalidInput(f"name: 1 to {NAME_MAX} printable characters")
    lifetime = check_lifetime(days, settings)
    mine = cohort_id is None or (
        session.get(Cohort, cohort_id) is not None and principal.role_in(cohort_id) is not None
    )
    if not mine:
        raise NotFound(f"no cohort {cohort_id} of yours")
    token = new_token()
    record = PersonalAccessToken(
        user_id=user.id,
        name=name,
        token_hash=hash_token(token),
        cohort_id=cohort_id,
        read_only=read_only,
        token_version=user.token_version,
        created_at=_now(),
        expires_at=_now() + lifetime,
    )
    session.add(record)
    session.flush()
    return Created(record, token)


def list_for(session: Session, user_id: int) -> list[PersonalAccessToken]:
    query = select(PersonalAccessToken).where(PersonalAccessToken.user_id == user_id)
    return list(session.scalars(query.order_by(PersonalAccessToken.id)))


def revoke(session: Session, user_id: int, token_id: int) -> PersonalAccessToken:
    """Revoke one token of ``user_id`` (revoking it twice is no error); another user's token does not exist."""
    record = session.get(PersonalAccessToken, token_id)
    if record is None or record.user_id != user_id:
        raise NotFound(f"no personal access token {token_id}")
    if record.revoked_at is None:
        record.revoked_at = _now()
    return record


def revoke_all(session: Session, user_id: int) -> list[int]:
    """Revoke every live token of a user (a suspension, a password reset); returns their ids."""
    query = select(PersonalAccessToken).where(
        PersonalAccessToken.user_id == user_id, PersonalAccessToken.revoked_at.is_(None)
    )
    now = _now()
    records = list(session.scalars(query))
    for record in records:
        record.revoked_at = now
    session.flush()
    return [record.id for record in records]


@dataclass(frozen=True)
class TokenUse:
    """What the access middleware needs of an accepted token."""

    id: int
    user: User
    cohort_id: int | None
    read_only: bool


def user_for_personal_token(session: Session, token: str) -> TokenUse:
    """The active user a personal access token speaks for; any doubt is a 401."""
    record = session.scalar(select(PersonalAccessToken).where(PersonalAccessToken.token_hash == hash_token(token)))
    if record is None:
        raise Unauthorized("the personal access token is not valid")
    user = session.get(User, record.user_id)
    context = audit.audit_context.get()
    if context is not None:  # a refused use is journaled too, naming the token and its owner
        context.extra["pat_id"] = record.id
        context.actor = user.username if user is not None else context.actor
    state = state_of(record)
    if state == "revoked":
        raise Unauthorized("the personal access token was revoked")
    if state == "expired":
        raise Unauthorized("the personal access token has expired")
    if user is None or not user.is_active or user.token_version != record.token_version:
        raise Unauthorized("the personal access token was issued before a password reset or a suspension")
    return TokenUse(record.id, user, record.cohort_id, record.read_only)


def narrow(principal: Principal, use: TokenUse) -> Principal:
    """The caller as the token lets them act: a cohort token keeps only that cohort (a platform admin's acts as
    that cohort's admin, nothing more); every token's principal names it."""
    if use.cohort_id is None:
        return replace(principal, personal_token=use.id)
    role = CohortRole.ADMIN if principal.platform_admin else principal.roles.get(use.cohort_id)
    roles = {use.cohort_id: role} if role is not None else {}
    return replace(principal, platform_admin=False, roles=roles, personal_token=use.id)


# -- each use ---------------------------------------------------------------------------------------------------
_seen_lock = threading.Lock()
_seen: dict[int, str] = {}  # token id -> the minute its use was last journaled by this process


def _minute(moment: datetime) -> str:
    return _aware(moment).strftime("%Y-%m-%dT%H:%M")


def note_use(session: Session, token_id: int, method: str, path: str, source: str, actor: str) -> bool:
    """Journal a use (``pat.use``) and set the token's last use, at most once per token and minute; True when
    written. Several processes check the stored last use as well."""
    now = _now()
    minute = _minute(now)
    with _seen_lock:
        if _seen.get(token_id) == minute:
            return False
        _seen[token_id] = minute
        if len(_seen) > 100_000:
            _seen.clear()
    record = session.get(PersonalAccessToken, token_id)
    if record is None or (record.last_used_at is not None and _minute(record.last_used_at) == minute):
        return False
    record.last_used_at, record.last_used_from = now, source[:64]
    context = audit.audit_context.get()
    recorded = context.recorded if context is not None else False
    audit.record(
        session,
        "pat.use",
        target=f"pat:{token_id}",
        params={"pat_id": token_id, "method": method, "path": path[:200]},
        actor=actor,
        source=source,
    )
    if context is not None:  # the request's own event is still to be journaled: this one is not it
        context.recorded = recorded
    return True
