from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from awesomme.core.config import Settings
from awesomme.core.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound
from awesomme.core.security import hash_secret
from awesomme.core.visibility import Principal, load_principal
from awesomme.models import Cohort, CohortRole, Invite, Membership, User
from awesomme.services import identity, invites

PASSWORD = "correct-horse-battery"


@pytest.fixture()
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(var_dir=tmp_path, database_url=db_url, invite_max_hours=48)


def _person(session: Session, settings: Settings, username: str, cohort: Cohort | None = None, role: str = "") -> User:
    user = identity.create_user(session, settings, username, PASSWORD)
    if cohort is not None:
        session.add(Membership(cohort_id=cohort.id, user_id=user.id, role=role))
        session.flush()
    return user


def _principal(session: Session, user: User) -> Principal:
    return load_principal(session, user)


@pytest.fixture()
def cohort(session: Session) -> Cohort:
    cohort = Cohort(name="alpha", description="", created_by="test")
    session.add(cohort)
    session.flush()
    return cohort


@pytest.fixture()
def admin(session: Session, settings: Settings, cohort: Cohort) -> Principal:
    return _principal(session, _person(session, settings, "alpha.admin", cohort, CohortRole.ADMIN))


def test_a_code_is_a_long_secret_shown_once_and_stored_hashed(
    session: Session, settings: Settings, admin: Principal, cohort: Cohort
) -> None:
    view, code = invites.create_invite(session, settings, admin, cohort.id, "member", 3, 24)
    assert len(code) >= 22  # urlsafe base64: 6 bits a character, 128 bits at least
    stored = session.get(Invite, view.id)
    assert stored is not None and stored.code_hash == hash_secret(code)
    assert code not in {str(value) for value in stored.__dict__.values()}
    listed = invites.list_invites(session, admin, cohort.id)
    assert [item.id for item in listed] == [view.id]
    assert "code" not in listed[0].as_json() and code not in str(listed[0].as_json())
    assert (view.role, view.max_uses, view.uses, view.state) == ("member", 3, 0, "active")
    _, other = invites.create_invite(session, settings, admin, cohort.id, "member", 1, 1)
    assert other != code


def test_only_the_cohort_admins_create_codes_and_inputs_are_bounded(
    session: Session, settings: Settings, admin: Principal, cohort: Cohort
) -> None:
    member = _principal(session, _person(session, settings, "alpha.member", cohort, CohortRole.MEMBER))
    outsider = _principal(session, _person(session, settings, "outsider"))
    with pytest.raises(Forbidden):
        invites.create_invite(session, settings, member, cohort.id, "member", 1, 1)
    with pytest.raises(NotFound):
        invites.create_invite(session, settings, outsider, cohort.id, "member", 1, 1)
    with pytest.raises(NotFound):
        invites.list_invites(session, outsider, cohort.id)
    platform_admin = Principal(999, "root", True)
    invites.create_invite(session, settings, platform_admin, cohort.id, "admin", 1, 1)
    with pytest.raises(InvalidInput, match="role"):
        invites.create_invite(session, settings, admin, cohort.id, "owner", 1, 1)
    with pytest.raises(InvalidInput, match="max_uses"):
        invites.create_invite(session, settings, admin, cohort.id, "member", 0, 1)
    with pytest.raises(InvalidInput, match="max_uses"):
        invites.create_invite(session, settings, admin, cohort.id, "member", invites.MAX_USES + 1, 1)
    with pytest.raises(InvalidInput, match="between 1 and 48"):
        invites.create_invite(session, settings, admin, cohort.id, "member", 1, 49)


def test_register_grants_exactly_the_role_and_spends_one_use(
    session: Session, settings: Settings, admin: Principal, cohort: Cohort
) -> None:
    _, code = invites.create_invite(session, settings, admin, cohort.id, "admin", 2, 24)
    grant = invites.register(session, settings, "newcomer", PASSWORD, code)
    assert (grant.username, grant.cohort_id, grant.cohort, grant.role) == ("newcomer", cohort.id, "alpha", "admin")
    user = session.scalar(select(User).where(User.username == "newcomer"))
    assert user is not None and not user.is_platform_admin
    assert _principal(session, user).roles == {cohort.id: "admin"}
    assert identity.authenticate(session, "newcomer", PASSWORD) is not None
    assert session.scalar(select(Invite.uses)) == 1


def test_a_refused_account_spends_nothing(
    session: Session, settings: Settings, admin: Principal, cohort: Cohort
) -> None:
    view, code = invites.create_invite(session, settings, admin, cohort.id, "member", 1, 24)
    session.commit()
    for username, password, error in (
        ("alpha.admin", PASSWORD, Conflict),  # taken
        ("bad name!", PASSWORD, InvalidInput),
        ("weak.one", "short", InvalidInput),
    ):
        with pytest.raises(error):
            invites.register(session, settings, username, password, code)
        session.rollback()  # the route's transaction ends here
    assert session.get(Invite, view.id).uses == 0  # type: ignore[union-attr]
    invites.register(session, settings, "finally", PASSWORD, code)


def test_redeem_adds_the_role_once(session: Session, settings: Settings, admin: Principal, cohort: Cohort) -> None:
    joiner = _person(session, settings, "joiner")
    _, code = invites.create_invite(session, settings, admin, cohort.id, "member", 5, 24)
    grant = invites.redeem(session, _principal(session, joiner), code)
    assert (grant.username, grant.cohort_id, grant.role) == ("joiner", cohort.id, "member")
    with pytest.raises(Conflict, match="already"):
        invites.redeem(session, _principal(session, joiner), code)
    with pytest.raises(Conflict):
        invites.redeem(session, admin, code)
    assert session.scalar(select(Invite.uses)) == 1


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda invite: setattr(invite, "revoked", True), "revoked"),
        (lambda invite: setattr(invite, "expires_at", datetime.now(UTC) - timedelta(seconds=1)), "expired"),
        (lambda invite: setattr(invite, "uses", invite.max_uses), "used up"),
    ],
)
def test_spent_codes_are_gone_and_say_why(
    session: Session, settings: Settings, admin: Principal, cohort: Cohort, spoil, message: str
) -> None:
    view, code = invites.create_invite(session, settings, admin, cohort.id, "member", 2, 24)
    spoil(session.get(Invite, view.id))
    session.flush()
    with pytest.raises(Gone, match=message) as refused:
        invites.register(session, settings, "late", PASSWORD, code)
    assert isinstance(refused.value, invites.CodeRefused)
    joiner = _principal(session, _person(session, settings, "late.joiner"))
    with pytest.raises(Gone, match=message):
        invites.redeem(session, joiner, code)
    assert invites.list_invites(session, admin, cohort.id)[0].state == message


def test_unknown_codes_are_not_found(session: Session, settings: Settings, admin: Principal) -> None:
    for code in ("not-a-code", "", "x" * 10_000):
        with pytest.raises(NotFound, match="unknown invite code") as refused:
            invites.redeem(session, admin, code)
        assert isinstance(refused.value, invites.CodeRefused)
        with pytest.raises(NotFound, match="unknown invite code"):
            invites.register(session, settings, "someone", PASSWORD, code)


def test_the_last_use_goes_to_one_caller_only(
    session: Session, settings: Settings, admin: Principal, cohort: Cohort
) -> None:
    view, code = invites.create_invite(session, settings, admin, cohort.id, "member", 1, 24)
    stale = session.get(Invite, view.id)
    assert stale is not None
    invites.register(session, settings, "first", PASSWORD, code)
    # A second caller that read the invite before the first one spent it: the guarded UPDATE refuses.
    with pytest.raises(Gone, match="used up"):
        invites._use(session, stale, _person(session, settings, "second").id, "second")


def test_revoking_needs_the_cohorts_admin(
    session: Session, settings: Settings, admin: Principal, cohort: Cohort
) -> None:
    view, code = invites.create_invite(session, settings, admin, cohort.id, "member", 1, 24)
    member = _principal(session, _person(session, settings, "alpha.member", cohort, CohortRole.MEMBER))
    outsider = _principal(session, _person(session, settings, "outsider"))
    with pytest.raises(NotFound, match=f"no invite {view.id}"):
        invites.revoke_invite(session, outsider, view.id)
    with pytest.raises(Forbidden):
        invites.revoke_invite(session, member, view.id)
    with pytest.raises(NotFound):
        invites.revoke_invite(session, admin, view.id + 100)
    assert invites.revoke_invite(session, admin, view.id).state == "revoked"
    assert invites.revoke_invite(session, admin, view.id).state == "revoked"  # again: fine
    with pytest.raises(Gone, match="revoked"):
        invites.register(session, settings, "late", PASSWORD, code)
