from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from awesomme.core.config import Settings
from awesomme.core.errors import InvalidInput, NotFound, Unauthorized
from awesomme.core.visibility import Principal, load_principal
from awesomme.models import Cohort, Membership, PersonalAccessToken, User
from awesomme.services import identity, personal_tokens

PASSWORD = "correct-horse-battery"


def identity_user(user_id: int) -> User:
    return User(id=user_id, username="x", password_hash="", token_version=0)


@pytest.fixture()
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(var_dir=tmp_path, database_url=db_url, pat_max_days=30)


def test_a_token_is_recognisable_random_and_stored_as_its_sha256() -> None:
    first, second = personal_tokens.new_token(), personal_tokens.new_token()
    assert first.startswith("awpat_") and personal_tokens.is_personal_token(first)
    assert len(first) >= len("awpat_") + 43 and first != second  # 256 random bits each
    assert personal_tokens.hash_token(first) == hashlib.sha256(first.encode()).hexdigest()
    assert not personal_tokens.is_personal_token("eyJhbGciOiJSUzI1NiJ9.e30.sig")  # an access token is no PAT


def test_the_lifetime_is_capped_by_the_setting_named_in_the_refusal(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, pat_max_days=30)
    assert personal_tokens.check_lifetime(30, settings) == timedelta(days=30)
    with pytest.raises(InvalidInput, match="AWESOMME_PAT_MAX_DAYS"):
        personal_tokens.check_lifetime(31, settings)
    with pytest.raises(InvalidInput, match="at least 1"):
        personal_tokens.check_lifetime(0, settings)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/dicom-web/studies", True),
        ("HEAD", "/datastore/image", True),
        ("POST", "/activelearning/random", True),
        ("PUT", "/datastore/label", False),
        ("POST", "/infer/everything_mr", False),
        ("DELETE", "/api/segmentations/1.2.3", False),
        ("POST", "/api/scores", False),
        ("POST", "/activelearningx", False),  # only the strategies' routes themselves
        ("PUT", "/activelearning/random", False),
    ],
)
def test_read_only_means_reads_and_samples(method: str, path: str, allowed: bool) -> None:
    assert personal_tokens.read_only_allows(method, path) is allowed


def test_a_cohort_token_narrows_the_caller_to_that_cohort() -> None:
    member = Principal(7, "ann", False, {1: "member", 2: "admin"})
    user = identity_user(7)
    narrowed = personal_tokens.narrow(member, personal_tokens.TokenUse(5, user, 1, False))
    assert narrowed.roles == {1: "member"} and narrowed.personal_token == 5 and not narrowed.administers_any
    root = Principal(1, "root", True, {})
    as_root = personal_tokens.narrow(root, personal_tokens.TokenUse(6, user, 2, False))
    assert not as_root.platform_admin and as_root.roles == {2: "admin"}  # that cohort's admin, nothing more
    gone = personal_tokens.narrow(member, personal_tokens.TokenUse(8, user, 3, False))  # no longer a member
    assert gone.roles == {} and not gone.in_any_cohort
    whole = personal_tokens.narrow(member, personal_tokens.TokenUse(9, user, None, True))
    assert whole.roles == member.roles and whole.personal_token == 9


def test_tokens_end_on_expiry_revocation_reset_and_suspension(session: Session, settings: Settings) -> None:
    ann = identity.create_user(session, settings, "ann", PASSWORD)
    principal = load_principal(session, ann)
    created = personal_tokens.create(session, settings, ann, principal, "nightly", 7)
    assert created.record.token_hash == personal_tokens.hash_token(created.token)
    assert personal_tokens.user_for_personal_token(session, created.token).user.id == ann.id
    with pytest.raises(Unauthorized):
        personal_tokens.user_for_personal_token(session, created.token + "x")

    created.record.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    with pytest.raises(Unauthorized, match="expired"):
        personal_tokens.user_for_personal_token(session, created.token)

    second = personal_tokens.create(session, settings, ann, principal, "weekly", 7)
    personal_tokens.revoke(session, ann.id, second.record.id)
    with pytest.raises(Unauthorized, match="revoked"):
        personal_tokens.user_for_personal_token(session, second.token)
    with pytest.raises(NotFound):  # someone else's token does not exist for ann
        personal_tokens.revoke(session, ann.id + 1000, second.record.id)

    third = personal_tokens.create(session, settings, ann, principal, "monthly", 30)
    identity.reset_password(session, settings, "ann", PASSWORD + "!")
    assert session.get(PersonalAccessToken, third.record.id).revoked_at is not None  # type: ignore[union-attr]
    with pytest.raises(Unauthorized):
        personal_tokens.user_for_personal_token(session, third.token)

    fourth = personal_tokens.create(session, settings, ann, principal, "again", 1)
    identity.disable_user(session, "ann")
    with pytest.raises(Unauthorized):
        personal_tokens.user_for_personal_token(session, fourth.token)


def test_a_cohort_token_needs_a_role_in_that_cohort(session: Session, settings: Settings) -> None:
    bob = identity.create_user(session, settings, "bob", PASSWORD)
    mine, theirs = Cohort(name="mine", created_by="root"), Cohort(name="theirs", created_by="root")
    session.add_all([mine, theirs])
    session.flush()
    session.add(Membership(cohort_id=mine.id, user_id=bob.id, role="member"))
    session.flush()
    principal = load_principal(session, bob)
    created = personal_tokens.create(session, settings, bob, principal, "mine only", 3, cohort_id=mine.id)
    assert created.record.cohort_id == mine.id
    with pytest.raises(NotFound):
        personal_tokens.create(session, settings, bob, principal, "theirs", 3, cohort_id=theirs.id)
    with pytest.raises(InvalidInput, match="AWESOMME_PAT_MAX_DAYS"):
        personal_tokens.create(session, settings, bob, principal, "too long", 31)
