"""Sample grants: one download, of one series, from the address that asked, within minutes, for an active user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from awesomme.core.config import get_settings
from awesomme.core.db import session_scope
from awesomme.models import AuditEvent, SampleGrant, User
from awesomme.services import identity, sample_grants

SERIES = "1.2.826.0.1.3680043.8.498.77"


def _user(name: str) -> None:
    with session_scope() as session:
        identity.create_user(session, get_settings(), name, f"{name}-password-123")


def _grant(name: str, series: str = SERIES, address: str = "192.0.2.10") -> int:
    with session_scope() as session:
        grant = sample_grants.grant(session, name, series, address)
    assert grant is not None
    return grant


def _consume(series: str = SERIES, address: str = "192.0.2.10") -> sample_grants.Granted | None:
    with session_scope() as session:
        return sample_grants.consume(session, series, address)


def test_a_grant_is_used_once_by_its_user_for_its_series_from_its_address(platform_db: str) -> None:
    _user("reader.one")
    grant = _grant("reader.one")
    assert _consume(address="192.0.2.11") is None  # another machine
    assert _consume(series=SERIES + ".1") is None  # another series
    used = _consume()
    assert used is not None and used.id == grant
    with session_scope() as session:
        assert session.get(User, used.user_id).username == "reader.one"  # type: ignore[union-attr]
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "sample.next")).one()
        assert (event.actor, event.target, event.source) == ("reader.one", SERIES, "192.0.2.10")
        assert event.params["grant"] == grant
    assert _consume() is None  # once


def test_an_expired_grant_or_a_suspended_users_grant_opens_nothing(platform_db: str) -> None:
    _user("reader.two")
    expired = _grant("reader.two")
    with session_scope() as session:
        past = datetime.now(UTC) - timedelta(seconds=1)
        session.execute(update(SampleGrant).where(SampleGrant.id == expired).values(expires_at=past))
    assert _consume() is None
    _grant("reader.two")
    with session_scope() as session:
        session.execute(update(User).where(User.username == "reader.two").values(is_active=False))
    assert _consume() is None


def test_no_grant_for_someone_who_is_not_a_user_or_without_an_address(platform_db: str) -> None:
    _user("reader.three")
    with session_scope() as session:
        assert sample_grants.grant(session, "nobody.here", SERIES, "192.0.2.10") is None
        assert sample_grants.grant(session, "reader.three", SERIES, "") is None
