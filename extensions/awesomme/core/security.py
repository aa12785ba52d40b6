"""Passwords (argon2) and tokens: short-lived RS256 access tokens with a ``kid`` (authlib), opaque refresh tokens.

Signing keys live in the platform DB (``signing_keys``); the newest signs, every published one verifies, so a
rotation never cuts a session short: a retired key stays published until the tokens it signed have expired.
Their private halves are stored encrypted (Fernet) with a key-encryption key kept outside the database
(``AWESOMME_KEY_ENCRYPTION_KEY``, else ``var/keys/signing.key``): a copy of the database alone cannot sign.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import time
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from authlib.deprecate import AuthlibDeprecationWarning
from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken as InvalidCiphertext
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

with warnings.catch_warnings():  # authlib.jose points to its successor (joserfc); its API holds until authlib 2.0
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken
    from authlib.jose.errors import JoseError

__all__ = [
    "ACCESS_ALGORITHM",
    "ENCRYPTED_KEY_PREFIX",
    "MAX_USER_ID",
    "InvalidToken",
    "KeyEncryptionError",
    "KeyPair",
    "TokenClaims",
    "decode_access_token",
    "decrypt_private_key",
    "encrypt_private_key",
    "hash_password",
    "hash_secret",
    "is_encrypted_key",
    "issue_access_token",
    "key_encryption_key",
    "new_key_pair",
    "new_secret",
    "verify_password",
]

ACCESS_ALGORITHM = "RS256"
_jwt = JsonWebToken([ACCESS_ALGORITHM])  # "none" and HMAC are never accepted
_hasher = PasswordHasher()


# A user id is a SQL integer: a larger one names nobody, and binding it would overflow the driver.
MAX_USER_ID = 2**63 - 1


class InvalidToken(Exception):
    """Any reason a token is not accepted; the message is for logs, clients just get 401."""


class KeyEncryptionError(Exception):
    """A stored signing key cannot be decrypted (wrong or missing key-encryption key), or that key is unusable."""


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


# -- signing keys at rest ---------------------------------------------------------------------------------------
# Stored ciphertexts start with this, so a private key still stored in plain text (PEM) is recognised and migrated.
ENCRYPTED_KEY_PREFIX = "fernet:v1:"
_KEK_MIN_LENGTH = 32
_KEK_INFO = b"awesomme signing keys at rest v1"


def key_encryption_key(key_file: Path, configured: str = "") -> Fernet:
    """The cipher for signing keys: from ``configured`` (the environment) or ``key_file`` (created 0600 once)."""
    secret = configured.strip()
    if not secret:
        secret = _read_or_create_key_file(key_file)
    if len(secret) < _KEK_MIN_LENGTH:
        source = "AWESOMME_KEY_ENCRYPTION_KEY" if configured.strip() else str(key_file)
        raise KeyEncryptionError(f"the key-encryption key in {source} is shorter than {_KEK_MIN_LENGTH} characters")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEK_INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def _read_or_create_key_file(key_file: Path) -> str:
    if not key_file.exists():
        key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
        except FileExistsError:  # another process created it meanwhile: use theirs
            pass
        else:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(48) + "\n")
    try:
        return key_file.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise KeyEncryptionError(f"cannot read the key-encryption key {key_file}: {error.strerror}") from error


def is_encrypted_key(stored: str) -> bool:
    return stored.startswith(ENCRYPTED_KEY_PREFIX)


def encrypt_private_key(private_pem: str, cipher: Fernet) -> str:
    return ENCRYPTED_KEY_PREFIX + cipher.encrypt(private_pem.encode()).decode()


def decrypt_private_key(stored: str, cipher: Fernet) -> str:
    """The PEM of a stored private key; a key still in plain text (before its migration) is returned as it is."""
    if not is_encrypted_key(stored):
        return stored
    try:
        return cipher.decrypt(stored.removeprefix(ENCRYPTED_KEY_PREFIX).encode()).decode()
    except (InvalidCiphertext, ValueError) as error:
        raise KeyEncryptionError("a signing key cannot be decrypted with this key-encryption key") from error


@dataclass(frozen=True)
class TokenClaims:
    username: str
    user_id: int
    token_version: int
    jti: str
    expires_at: datetime
    family: str | None = None  # the refresh family (one login) the token belongs to; logout ends the family


def issue_access_token(
    key: KeyPair,
    issuer: str,
    username: str,
    user_id: int,
    token_version: int,
    ttl: timedelta,
    family: str | None = None,
) -> tuple[str, TokenClaims]:
    now = int(time.time())
    claims = TokenClaims(
        username, user_id, token_version, uuid.uuid4().hex, datetime.fromtimestamp(now, UTC) + ttl, family
    )
    payload: dict[str, Any] = {
        "iss": issuer,
        "sub": username,
        "uid": user_id,
        "ver": token_version,
        "jti": claims.jti,
        "iat": now,
        "exp": int(claims.expires_at.timestamp()),
    }
    if family is not None:
        payload["fam"] = family
    header = {"alg": ACCESS_ALGORITHM, "kid": key.kid, "typ": "JWT"}
    token = _jwt.encode(header, payload, JsonWebKey.import_key(key.private_pem)).decode()
    return token, claims


def _header(token: str) -> dict[str, Any]:
    """The JOSE header, which must be a JSON object (``null``, a list or a number is not a header)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("malformed token: a JWT has three parts")
    encoded = parts[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, binascii.Error) as error:  # bad base64, bad UTF-8 and bad JSON are all ValueErrors
        raise InvalidToken("malformed token header") from error
    if not isinstance(header, dict):
        raise InvalidToken("malformed token header: not a JSON object")
    return header


def _integer(claims: dict[str, Any], name: str, low: int, high: int) -> int:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidToken(f"claim {name} is not an integer from {low} to {high}")
    return value


def decode_access_token(token: str, public_keys: dict[str, dict[str, Any]], issuer: str) -> TokenClaims:
    """Verify signature (by ``kid``), algorithm, issuer and expiry; returns the claims."""
    header = _header(token)
    if header.get("alg") != ACCESS_ALGORITHM:
        raise InvalidToken(f"algorithm {str(header.get('alg'))[:32]!r} is not accepted")
    kid = header.get("kid")
    jwk = public_keys.get(kid) if isinstance(kid, str) else None
    if jwk is None:
        raise InvalidToken("unknown signing key")
    try:
        claims = _jwt.decode(
            token,
            JsonWebKey.import_key(jwk),
            claims_options={"iss": {"essential": True, "value": issuer}, "exp": {"essential": True}},
        )
        claims.validate(leeway=0)
    # authlib raises its own errors for most bad input, and ValueError/TypeError for some (a payload that is no
    # JSON object, a non-numeric exp): every one of them is a token we do not accept.
    except (JoseError, ValueError, TypeError, binascii.Error) as error:
        raise InvalidToken(str(error)[:200] or type(error).__name__) from error
    try:
        family = claims.get("fam")
        if family is not None and not isinstance(family, str):
            raise InvalidToken("claim fam is not a string")
        return TokenClaims(
            username=str(claims["sub"]),
            user_id=_integer(claims, "uid", 1, MAX_USER_ID),
            token_version=_integer(claims, "ver", 0, MAX_USER_ID),
            jti=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(_integer(claims, "exp", 0, 2**40), UTC),
            family=family,
        )
    except KeyError as error:
        raise InvalidToken("claims are incomplete") from error
