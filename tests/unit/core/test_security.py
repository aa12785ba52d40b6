"""Token headers that are no JSON object, and signing keys at rest (core.security)."""

from __future__ import annotations

import base64
import os
from datetime import timedelta
from pathlib import Path

import pytest

from awesomme.core.security import (
    ENCRYPTED_KEY_PREFIX,
    InvalidToken,
    KeyEncryptionError,
    decode_access_token,
    decrypt_private_key,
    encrypt_private_key,
    issue_access_token,
    key_encryption_key,
    new_key_pair,
)

KEY = new_key_pair()
PUBLISHED = {KEY.kid: KEY.public_jwk}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "header",
    [b"null", b"[]", b'["RS256"]', b"7", b'"RS256"', b"true", b"{", b"\xff\xfe", b'{"alg": ["RS256"]}'],
)
def test_token_header_that_is_no_json_object_is_an_invalid_token(header: bytes) -> None:
    token, _ = issue_access_token(KEY, "awesomme", "ann", 1, 0, timedelta(minutes=1))
    _, payload, signature = token.split(".")
    with pytest.raises(InvalidToken):
        decode_access_token(f"{_b64(header)}.{payload}.{signature}", PUBLISHED, "awesomme")


@pytest.mark.parametrize(
    "token", ["", "garbage", "a.b", "a.b.c.d", "%%%.%%%.%%%", "\u00e9.\u00e9.\u00e9", "...", "=.=.="]
)
def test_garbage_tokens_are_invalid_tokens(token: str) -> None:
    with pytest.raises(InvalidToken):
        decode_access_token(token, PUBLISHED, "awesomme")


@pytest.mark.parametrize("uid", [2**63, 2**64, 10**30, 0, -5])
def test_token_user_id_beyond_a_sql_integer_is_an_invalid_token(uid: int) -> None:
    token, _ = issue_access_token(KEY, "awesomme", "ann", uid, 0, timedelta(minutes=1))
    with pytest.raises(InvalidToken, match="uid"):
        decode_access_token(token, PUBLISHED, "awesomme")


def test_a_good_token_carries_its_refresh_family() -> None:
    token, _ = issue_access_token(KEY, "awesomme", "ann", 2**63 - 1, 3, timedelta(minutes=1), family="f1")
    claims = decode_access_token(token, PUBLISHED, "awesomme")
    assert (claims.user_id, claims.token_version, claims.family) == (2**63 - 1, 3, "f1")


def test_key_encryption_key_file_is_created_owner_only_once(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # whatever the process's umask, the file is 0600 and its directory 0700
    try:
        key_file = tmp_path / "keys" / "signing.key"
        cipher = key_encryption_key(key_file)
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert key_file.parent.stat().st_mode & 0o777 == 0o700
        stored = encrypt_private_key(KEY.private_pem, cipher)
        assert stored.startswith(ENCRYPTED_KEY_PREFIX) and "PRIVATE KEY" not in stored
        assert decrypt_private_key(stored, key_encryption_key(key_file)) == KEY.private_pem  # the same key again
    finally:
        os.umask(previous)


def test_a_stored_key_needs_the_key_encryption_key_it_was_encrypted_with(tmp_path: Path) -> None:
    stored = encrypt_private_key(KEY.private_pem, key_encryption_key(tmp_path / "a.key"))
    for other in (key_encryption_key(tmp_path / "b.key"), key_encryption_key(tmp_path / "c.key", "x" * 40)):
        with pytest.raises(KeyEncryptionError):
            decrypt_private_key(stored, other)
    with pytest.raises(KeyEncryptionError):
        decrypt_private_key(ENCRYPTED_KEY_PREFIX + "not-a-fernet-token", key_encryption_key(tmp_path / "a.key"))
    # A configured key (AWESOMME_KEY_ENCRYPTION_KEY) writes no file and must be long enough.
    from_environment = key_encryption_key(tmp_path / "unused.key", "y" * 40)
    assert decrypt_private_key(encrypt_private_key("pem", from_environment), from_environment) == "pem"
    assert not (tmp_path / "unused.key").exists()
    with pytest.raises(KeyEncryptionError, match="shorter"):
        key_encryption_key(tmp_path / "unused.key", "short")
