"""Accounts and tokens: users with argon2 hashes, RS256 access tokens signed by rotating keys, refresh tokens.

Every function works inside the caller's DB session (one transaction per action); the one exception is a replayed
refresh token, whose family is revoked and committed before the 401 (the caller's rollback must not undo it).
Refresh tokens come in families: one per login, kept through rotation and named in each access token (``fam``).
Signing keys are stored encrypted with the key-encryption key (``core.security``), never in plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from awesomme.core import audit
from awesomme.core.config import Settings
from awesomme.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from awesomme.core.security import (
    InvalidToken,
    KeyEncryptionError,
    KeyPair,
    decode_access_token,
    decrypt_private_key,
    encrypt_private_key,
    hash_password,
    hash_secret,
    is_encrypted_key,
    issue_access_token,
    key_encryption_key,
    new_key_pair,
    new_secret,
    verify_password,
)
from awesomme.models import BrowserSession, RefreshToken, RevokedAccessToken, SigningKey, User
from awesomme.services import personal_tokens

__all__ = [
    "TokenPair",
    "authenticate",
    "change_password",
    "create_browser_session",
    "create_user",
    "disable_user",
    "encrypt_plain_signing_keys",
    "end_browser_session",
    "issue_tokens",
    "list_users",
    "logout",
    "public_keys",
    "refresh_tokens",
    "reset_password",
    "rotate_keys",
    "signing_key",
    "user_for_session",
    "user_for_token",
]

USERNAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Verifying against a fixed hash when the user does not exist keeps the answer time the same.
_DUMMY_HASH = hash_password("not a real password, only here for timing")


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int

    def as_oauth2(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were stored in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_password_strength(password: str, settings: Settings) -> None:
    if len(password) < settings.password_min_length:
        raise InvalidInput(f"the password must have at least {settings.password_min_length} characters")


def create_user(session: Session, settings: Settings, username: str, password: str, admin: bool = False) -> User:
    if not USERNAME.match(username):
        raise InvalidInput("a username has 1 to 64 letters, digits, '.', '-' or '_'")
    check_password_strength(password, settings)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(f"the username {username} is taken")
    user = User(username=username, password_hash=hash_password(password), is_platform_admin=admin)
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username}")
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        verify_password(_DUMMY_HASH, password)
        return None
    if not verify_password(user.password_hash, password) or not user.is_active:
        return None
    return user


def _end_tokens(session: Session, user: User, reason: str) -> None:
    """Every token of the user ends: access tokens (their version), refresh tokens, personal access tokens."""
    user.token_version += 1
    session.execute(update(RefreshToken).where(RefreshToken.user_id == user.id).values(revoked=True))
    revoked = personal_tokens.revoke_all(session, user.id)
    if revoked:
        audit.record(session, "pat.revoke", target=user.username, params={"pat_ids": revoked, "reason": reason})


def disable_user(session: Session, username: str) -> User:
    user = _user(session, username)
    user.is_active = False
    _end_tokens(session, user, "user disabled")
    return user


def reset_password(session: Session, settings: Settings, username: str, password: str) -> User:
    check_password_strength(password, settings)
    user = _user(session, username)
    user.password_hash = hash_password(password)
    _end_tokens(session, user, "password reset")
    return user


def change_password(session: Session, settings: Settings, user: User, current: str, new: str) -> None:
    """A user changes their own password; their other tokens and sessions end."""
    if not verify_password(user.password_hash, current):
        raise Unauthorized("the current password is wrong")
    reset_password(session, settings, user.username, new)


# -- keys -----------------------------------------------------------------------------------------------------
def _cipher(settings: Settings) -> Any:
    return key_encryption_key(settings.key_encryption_key_file, settings.key_encryption_key)


def rotate_keys(session: Session, settings: Settings) -> str:
    """A new signing key, stored encrypted; tokens signed by the previous one stay valid until they expire."""
    pair = new_key_pair()
    private = encrypt_private_key(pair.private_pem, _cipher(settings))
    session.add(SigningKey(kid=pair.kid, private_pem=private, public_jwk=pair.public_jwk, created_at=_now()))
    session.flush()
    return pair.kid


def _keys(session: Session) -> list[SigningKey]:
    return list(session.scalars(select(SigningKey).order_by(SigningKey.created_at)))


def signing_key(session: Session, settings: Settings) -> KeyPair:
    """The newest signing key, decrypted (created on first use)."""
    keys = _keys(session)
    if not keys:
        rotate_keys(session, settings)
        keys = _keys(session)
    newest = keys[-1]
    try:
        private_pem = decrypt_private_key(newest.private_pem, _cipher(settings))
    except KeyEncryptionError as error:
        raise RuntimeError(
            f"signing key {newest.kid}: {error} (AWESOMME_KEY_ENCRYPTION_KEY or "
            f"{settings.key_encryption_key_file} is not the key it was encrypted with)"
        ) from error
    return KeyPair(newest.kid, private_pem, dict(newest.public_jwk))


def encrypt_plain_signing_keys(session: Session, settings: Settings) -> list[str]:
    """Encrypt every signing key still stored in plain text (an installation from before keys were encrypted);
    returns their kids. Every encrypted key must also decrypt with the current key-encryption key."""
    cipher = _cipher(settings)
    migrated = []
    for key in _keys(session):
        if is_encrypted_key(key.private_pem):
            decrypt_private_key(key.private_pem, cipher)  # a wrong key-encryption key fails here, at start
            continue
        key.private_pem = encrypt_private_key(key.private_pem, cipher)
        migrated.append(key.kid)
    session.flush()
    return migrated


def public_keys(session: Session, settings: Settings) -> dict[str, dict[str, Any]]:
    """Keys that may have signed a token still valid: the newest, and any retired less than a token's life ago."""
    keys = _keys(session)
    horizon = _now() - timedelta(seconds=settings.access_token_ttl_s)
    published = {}
    for key, successor in zip(keys, [*keys[1:], None], strict=True):
        if successor is None or _aware(successor.created_at) > horizon:
            published[key.kid] = dict(key.public_jwk)
    return published


# -- tokens ---------------------------------------------------------------------------------------------------
def issue_tokens(session: Session, settings: Settings, user: User, family: str | None = None) -> TokenPair:
    """An access token and a refresh token; a login starts a new family, a refresh continues its own."""
    family = family or new_family()
    ttl = timedelta(seconds=settings.access_token_ttl_s)
    access, _ = issue_access_token(
        signing_key(session, settings), settings.jwt_issuer, user.username, user.id, user.token_version, ttl, family
    )
    refresh = new_secret()
    session.add(
        RefreshToken(
            token_hash=hash_secret(refresh),
            user_id=user.id,
            expires_at=_now() + timedelta(seconds=settings.refresh_token_ttl_s),
            family=family,
        )
    )
    return TokenPair(access, refresh, settings.access_token_ttl_s)


def new_family() -> str:
    return new_secret()[:32]


def _revoke_family(session: Session, record: RefreshToken) -> None:
    if record.family is None:  # issued before families: a family of its own
        record.revoked = True
        return
    session.execute(update(RefreshToken).where(RefreshToken.family == record.family).values(revoked=True))


def refresh_tokens(session: Session, settings: Settings, refresh_token: str) -> TokenPair:
    """A new pair for a valid refresh token, which is spent (refresh tokens rotate).

    A spent token presented again has been copied: its whole family (successors included) is revoked, so that
    neither the thief nor the client keeps a session from it."""
    record = session.get(RefreshToken, hash_secret(refresh_token))
    if record is None:
        raise Unauthorized("the refresh token is not valid")
    if record.spent and not record.revoked:
        _revoke_family(session, record)
        session.commit()  # the 401 below rolls the caller's transaction back: the revocation must outlive it
        raise Unauthorized("the refresh token was already used: its session has ended")
    if record.spent or record.revoked or _aware(record.expires_at) <= _now():
        raise Unauthorized("the refresh token is not valid")
    user = session.get(User, record.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("the refresh token is not valid")
    spend = update(RefreshToken).where(
        RefreshToken.token_hash == record.token_hash, RefreshToken.spent.is_(False), RefreshToken.revoked.is_(False)
    )
    if session.execute(spend.values(spent=True)).rowcount != 1:  # type: ignore[attr-defined]
        # spent by a concurrent request with the same token in the meantime: a replay as well
        _revoke_family(session, record)
        session.commit()
        raise Unauthorized("the refresh token was already used: its session has ended")
    return issue_tokens(session, settings, user, family=record.family or new_family())


def _family_ended(session: Session, family: str) -> bool:
    """True once any refresh token of the family is revoked (logout and replay revoke the whole family at once)."""
    query = select(RefreshToken.token_hash).where(RefreshToken.family == family, RefreshToken.revoked.is_(True))
    return bool(session.scalar(select(exists(query))))


def user_for_token(session: Session, settings: Settings, token: str) -> User:
    """The active user an access token speaks for; any doubt is a 401."""
    try:
        claims = decode_access_token(token, public_keys(session, settings), settings.jwt_issuer)
    except InvalidToken as error:
        raise Unauthorized(f"invalid token: {error}") from error
    if session.get(RevokedAccessToken, claims.jti) is not None:
        raise Unauthorized("the token was revoked")
    user = session.get(User, claims.user_id)  # decode_access_token bounds the id to what a SQL integer holds
    if user is None or not user.is_active or user.username != claims.username:
        raise Unauthorized("the token's user is not active")
    if user.token_version != claims.token_version:
        raise Unauthorized("the token was issued before a password reset or a suspension")
    if claims.family is not None and _family_ended(session, claims.family):
        raise Unauthorized("the token's session has ended")
    return user


def logout(session: Session, settings: Settings, token: str, refresh_token: str | None = None) -> None:
    """End the access token and its whole refresh family (the refresh token need not be sent); a refresh token
    that is sent, of the same user, ends its family too."""
    try:
        claims = decode_access_token(token, public_keys(session, settings), settings.jwt_issuer)
    except InvalidToken as error:
        raise Unauthorized(f"invalid token: {error}") from error
    session.merge(RevokedAccessToken(jti=claims.jti, expires_at=claims.expires_at))
    if claims.family is not None:
        session.execute(update(RefreshToken).where(RefreshToken.family == claims.family).values(revoked=True))
    if refresh_token:
        record = session.get(RefreshToken, hash_secret(refresh_token))
        if record is not None and record.user_id == claims.user_id:
            _revoke_family(session, record)


# -- browser sessions -------------------------------------------------------------------------------------------
def create_browser_session(session: Session, settings: Settings, user: User) -> str:
    """A new cookie secret for ``user``; only its hash is stored."""
    secret = new_secret()
    session.add(
        BrowserSession(
            token_hash=hash_secret(secret),
            user_id=user.id,
            token_version=user.token_version,
            expires_at=_now() + timedelta(seconds=settings.session_ttl_s),
        )
    )
    return secret


def user_for_session(session: Session, secret: str) -> User:
    record = session.get(BrowserSession, hash_secret(secret))
    if record is None or record.revoked or _aware(record.expires_at) <= _now():
        raise Unauthorized("the session has ended: log in again")
    user = session.get(User, record.user_id)
    if user is None or not user.is_active or user.token_version != record.token_version:
        raise Unauthorized("the session has ended: log in again")
    return user


def end_browser_session(session: Session, secret: str) -> None:
    record = session.get(BrowserSession, hash_secret(secret))
    if record is not None:
        record.revoked = True
