"""Passwords (argon2) and tokens: short-lived RS256 access tokens with a ``kid`` (authlib), opaque refresh tokens.

Signing keys live in the platform DB (``signing_keys``); the newest signs, every published one verifies, so a
rotation never cuts a session short: a retired key stays published until the tokens it signed have expired.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from authlib.deprecate import AuthlibDeprecationWarning

with warnings.catch_warnings():  # authlib.jose points to its successor (joserfc); its API holds until authlib 2.0
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken
    from authlib.jose.errors import JoseError

__all__ = [
    "ACCESS_ALGORITHM",
    "InvalidToken",
    "KeyPair",
    "TokenClaims",
    "decode_access_token",
    "hash_password",
    "hash_secret",
    "issue_access_token",
    "new_key_pair",
    "new_secret",
    "verify_password",
]

ACCESS_ALGORITHM = "RS256"
_jwt = JsonWebToken([ACCESS_ALGORITHM])  # "none" and HMAC are never accepted
_hasher = PasswordHasher()


class InvalidToken(Exception):
    """Any reason a token is not accepted; the message is for logs, clients just get 401."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_secret() -> str:
    """An opaque secret (refresh token, invite code): 256 bits."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """Secrets are stored hashed; they are random enough that a fast hash is the right one."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class KeyPair:
    kid: str
    private_pem: str
    public_jwk: dict[str, Any]


def new_key_pair() -> KeyPair:
    key = JsonWebKey.generate_key("RSA", 2048, is_private=True)
    kid = datetime.now(UTC).strftime("%Y%m%d%H%M%S-") + uuid.uuid4().hex[:8]
    public = {**key.as_dict(is_private=False), "kid": kid, "alg": ACCESS_ALGORITHM, "use": "sig"}
    private_pem = key.as_pem(is_private=True).decode()
    return KeyPair(kid=kid, private_pem=private_pem, public_jwk=public)


@dataclass(frozen=True)
class TokenClaims:
    username: str
    user_id: int
    token_version: int
    jti: str
    expires_at: datetime


def issue_access_token(
    key: KeyPair, issuer: str, username: str, user_id: int, token_version: int, ttl: timedelta
) -> tuple[str, TokenClaims]:
    now = int(time.time())
    claims = TokenClaims(username, user_id, token_version, uuid.uuid4().hex, datetime.fromtimestamp(now, UTC) + ttl)
    payload = {
        "iss": issuer,
        "sub": username,
        "uid": user_id,
        "ver": token_version,
        "jti": claims.jti,
        "iat": now,
        "exp": int(claims.expires_at.timestamp()),
    }
    header = {"alg": ACCESS_ALGORITHM, "kid": key.kid, "typ": "JWT"}
    token = _jwt.encode(header, payload, JsonWebKey.import_key(key.private_pem)).decode()
    return token, claims


def _header(token: str) -> dict[str, Any]:
    try:
        encoded = token.split(".")[0]
        return dict(json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))))
    except (ValueError, IndexError) as error:
        raise InvalidToken("malformed token") from error


def decode_access_token(token: str, public_keys: dict[str, dict[str, Any]], issuer: str) -> TokenClaims:
    """Verify signature (by ``kid``), algorithm, issuer and expiry; returns the claims."""
    header = _header(token)
    if header.get("alg") != ACCESS_ALGORITHM:
        raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
    jwk = public_keys.get(str(header.get("kid")))
    if jwk is None:
        raise InvalidToken("unknown signing key")
    try:
        claims = _jwt.decode(
            token,
            JsonWebKey.import_key(jwk),
            claims_options={"iss": {"essential": True, "value": issuer}, "exp": {"essential": True}},
        )
        claims.validate(leeway=0)
    except JoseError as error:
        raise InvalidToken(str(error)) from error
    try:
        return TokenClaims(
            username=str(claims["sub"]),
            user_id=int(claims["uid"]),
            token_version=int(claims["ver"]),
            jti=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidToken("claims are incomplete") from error
