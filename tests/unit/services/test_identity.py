from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from awesomme.core.config import Settings
from awesomme.core.errors import Conflict, InvalidInput, Unauthorized
from awesomme.core.security import issue_access_token, new_key_pair
from awesomme.models import SigningKey
from awesomme.services import identity

PASSWORD = "correct-horse-battery"


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
    new_kid = identity.rotate_keys(session)
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
        identity._signing_key(session), settings.jwt_issuer, "erin", user.id, 0, timedelta(seconds=-1)
    )
    for bad in (tampered, unsigned, stranger, expired, "garbage", ""):
        with pytest.raises(Unauthorized):
            identity.user_for_token(session, settings, bad)
