from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from awesomme.core.config import Settings
from awesomme.core.errors import Conflict, InvalidInput, Unauthorized
from awesomme.core.security import (
    ENCRYPTED_KEY_PREFIX,
    KeyEncryptionError,
    decrypt_private_key,
    issue_access_token,
    key_encryption_key,
    new_key_pair,
)
from awesomme.models import SigningKey
from awesomme.services import identity

PASSWORD = "correct-horse-battery"
NOW = datetime.now(UTC)


@pytest.fixture()
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(var_dir=tmp_path, database_url=db_url, access_token_ttl_s=60)


def _payload(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_password_grant_refresh_and_logout(session: Session, settings: Settings) -> None:
    user = identity.create_user(session, settings, "alice", PASSWORD)
    assert identity.authenticate(session, "alice", "wrong password!") is None
    assert identity.authenticate(session, "nobody", PASSWORD) is None
    pair = identity.issue_tokens(session, settings, identity.authenticate(session, "alice", PASSWORD) or user)
    assert identity.user_for_token(session, settings, pair.access_token).username == "alice"
    assert _payload(pair.access_token)["sub"] == "alice"

    renewed = identity.refresh_tokens(session, settings, pair.refresh_token)
    with pytest.raises(Unauthorized):  # a refresh token is spent once
        identity.refresh_tokens(session, settings, pair.refresh_token)
    identity.logout(session, settings, renewed.access_token, renewed.refresh_token)
    with pytest.raises(Unauthorized, match="revoked"):
        identity.user_for_token(session, settings, renewed.access_token)
    with pytest.raises(Unauthorized):
        identity.refresh_tokens(session, settings, renewed.refresh_token)


def test_accounts_refuse_weak_passwords_odd_names_and_duplicates(session: Session, settings: Settings) -> None:
    with pytest.raises(InvalidInput, match="12 characters"):
        identity.create_user(session, settings, "bob", "short")
    with pytest.raises(InvalidInput, match="username"):
        identity.create_user(session, settings, "bob smith", PASSWORD)
    identity.create_user(session, settings, "bob", PASSWORD)
    with pytest.raises(Conflict):
        identity.create_user(session, settings, "bob", PASSWORD)


def test_disabling_or_resetting_a_user_ends_their_tokens(session: Session, settings: Settings) -> None:
    user = identity.create_user(session, settings, "carol", PASSWORD)
    pair = identity.issue_tokens(session, settings, user)
    identity.reset_password(session, settings, "carol", "a-brand-new-password")
    with pytest.raises(Unauthorized, match="password reset"):
        identity.user_for_token(session, settings, pair.access_token)
    assert identity.authenticate(session, "carol", PASSWORD) is None
    pair = identity.issue_tokens(session, settings, user)
    identity.disable_user(session, "carol")
    with pytest.raises(Unauthorized):
        identity.user_for_token(session, settings, pair.access_token)
    with pytest.raises(Unauthorized):
        identity.refresh_tokens(session, settings, pair.refresh_token)
    assert identity.authenticate(session, "carol", "a-brand-new-password") is None


def test_rotation_keeps_old_tokens_valid_and_publishes_both_keys(session: Session, settings: Settings) -> None:
    user = identity.create_user(session, settings, "dave", PASSWORD)
    old = identity.issue_tokens(session, settings, user).access_token
    first_kid = json.loads(base64.urlsafe_b64decode(old.split(".")[0] + "=="))["kid"]
    new_kid = identity.rotate_keys(session, settings)
    new = identity.issue_tokens(session, settings, user).access_token
    assert json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "=="))["kid"] == new_kid != first_kid
    assert set(identity.public_keys(session, settings)) == {first_kid, new_kid}
    assert identity.user_for_token(session, settings, old).username == "dave"
    # Once a token's lifetime has passed since the rotation, the old key is no longer published.
    for key in session.query(SigningKey):
        key.created_at = key.created_at - timedelta(seconds=settings.access_token_ttl_s + 1)
    assert set(identity.public_keys(session, settings)) == {new_kid}
    assert identity.user_for_token(session, settings, new).username == "dave"


def test_forged_tampered_and_unknown_key_tokens_are_refused(session: Session, settings: Settings) -> None:
    user = identity.create_user(session, settings, "erin", PASSWORD)
    token = identity.issue_tokens(session, settings, user).access_token
    header, payload, signature = token.split(".")
    claims = _payload(token) | {"sub": "root", "uid": 999}
    tampered = ".".join([header, base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("="), signature])
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=") + f".{payload}."
    stranger, _ = issue_access_token(new_key_pair(), settings.jwt_issuer, "erin", user.id, 0, timedelta(minutes=1))
    expired, _ = issue_access_token(
        identity.signing_key(session, settings), settings.jwt_issuer, "erin", user.id, 0, timedelta(seconds=-1)
    )
    for bad in (tampered, unsigned, stranger, expired, "garbage", ""):
        with pytest.raises(Unauthorized):
            identity.user_for_token(session, settings, bad)


def _b64(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_logout_ends_the_whole_refresh_family_even_without_the_refresh_token(
    session: Session, settings: Settings
) -> None:
    user = identity.create_user(session, settings, "fay", PASSWORD)
    first = identity.issue_tokens(session, settings, user)
    second = identity.refresh_tokens(session, settings, first.refresh_token)  # same family, rotated
    other_login = identity.issue_tokens(session, settings, user)
    assert _payload(first.access_token)["fam"] == _payload(second.access_token)["fam"]
    assert _payload(other_login.access_token)["fam"] != _payload(second.access_token)["fam"]
    identity.logout(session, settings, second.access_token)  # no refresh token sent
    with pytest.raises(Unauthorized):
        identity.refresh_tokens(session, settings, second.refresh_token)
    with pytest.raises(Unauthorized, match="session has ended"):  # the family's earlier access token too
        identity.user_for_token(session, settings, first.access_token)
    # Another login of the same user is another session: it goes on.
    assert identity.user_for_token(session, settings, other_login.access_token).username == "fay"
    assert identity.refresh_tokens(session, settings, other_login.refresh_token).access_token


def test_replayed_refresh_token_revokes_its_family_successors_included(session: Session, settings: Settings) -> None:
    user = identity.create_user(session, settings, "gus", PASSWORD)
    stolen = identity.issue_tokens(session, settings, user)
    successor = identity.refresh_tokens(session, settings, stolen.refresh_token)
    with pytest.raises(Unauthorized, match="already used"):
        identity.refresh_tokens(session, settings, stolen.refresh_token)
    session.rollback()  # what the request's transaction does on the 401: the revocation was committed before it
    with pytest.raises(Unauthorized):
        identity.refresh_tokens(session, settings, successor.refresh_token)
    with pytest.raises(Unauthorized, match="session has ended"):
        identity.user_for_token(session, settings, successor.access_token)


def test_signing_keys_are_stored_encrypted_and_a_copy_of_the_database_cannot_sign(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    user = identity.create_user(session, settings, "hal", PASSWORD)
    identity.issue_tokens(session, settings, user)
    identity.rotate_keys(session, settings)
    session.commit()
    stored = [key.private_pem for key in session.query(SigningKey)]
    assert len(stored) == 2
    assert all(value.startswith(ENCRYPTED_KEY_PREFIX) and "PRIVATE KEY" not in value for value in stored)
    assert settings.key_encryption_key_file.stat().st_mode & 0o777 == 0o600
    # Someone with the database but another key-encryption key (or none) gets nothing usable.
    thief = key_encryption_key(tmp_path / "elsewhere" / "signing.key")
    for value in stored:
        with pytest.raises(KeyEncryptionError):
            decrypt_private_key(value, thief)
    with pytest.raises(RuntimeError, match="not the key it was encrypted with"):
        identity.signing_key(session, settings.model_copy(update={"var_dir": tmp_path / "elsewhere"}))


def test_plain_text_signing_keys_are_found_and_encrypted(session: Session, settings: Settings) -> None:
    pair = new_key_pair()
    session.add(SigningKey(kid=pair.kid, private_pem=pair.private_pem, public_jwk=pair.public_jwk, created_at=NOW))
    session.flush()
    assert identity.encrypt_plain_signing_keys(session, settings) == [pair.kid]
    stored = session.get(SigningKey, pair.kid)
    assert stored is not None and stored.private_pem.startswith(ENCRYPTED_KEY_PREFIX)
    assert identity.signing_key(session, settings).private_pem == pair.private_pem
    assert identity.encrypt_plain_signing_keys(session, settings) == []  # once is enough


def test_bearer_tokens_with_odd_headers_or_ids_beyond_64_bits_are_401_not_500(
    session: Session, settings: Settings
) -> None:
    user = identity.create_user(session, settings, "ivy", PASSWORD)
    good = identity.issue_tokens(session, settings, user).access_token
    header, payload, signature = good.split(".")
    odd_headers = [None, [], ["RS256"], 7, "RS256", {"alg": ["RS256"]}, {"alg": "RS256", "kid": ["x"]}]
    tokens = [f"{_b64(h)}.{payload}.{signature}" for h in odd_headers]
    tokens += ["%%%.%%%.%%%", "ab", "a.b", "a.b.c.d", "\u00e9t\u00e9.x.y", f"{header}.{payload}", "..."]
    key = identity.signing_key(session, settings)
    for uid in (2**64, 2**63, -1, 0):  # properly signed, but naming an id no SQL integer holds
        huge, _ = issue_access_token(key, settings.jwt_issuer, "ivy", uid, 0, timedelta(minutes=1))
        tokens.append(huge)
    for bad in tokens:
        with pytest.raises(Unauthorized):
            identity.user_for_token(session, settings, bad)
