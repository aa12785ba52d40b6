"""The journal's hash chain: intact when only appended to; any edit, insertion or deletion is named."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from awesomme.core import audit
from awesomme.core.db import engine_for, migrate
from awesomme.models import AuditEvent


@pytest.fixture()
def factory(db_url: str) -> sessionmaker[Session]:
    migrate(db_url)
    return sessionmaker(engine_for(db_url), expire_on_commit=False)


@pytest.fixture()
def journal(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as session:
        for number in range(1, 6):
            audit.record(session, "inference", target=f"1.2.{number}", params={"model": "m"}, actor="alice")
        session.commit()
        yield session


def _verdict(session: Session) -> audit.Verdict:
    session.expire_all()
    return audit.verify(session)


def test_an_appended_journal_verifies(journal: Session) -> None:
    verdict = _verdict(journal)
    assert verdict.ok and verdict.events == 5


def test_an_edited_row_is_named(journal: Session) -> None:
    journal.execute(update(AuditEvent).where(AuditEvent.id == 3).values(actor="mallory"))
    verdict = _verdict(journal)
    assert not verdict.ok and verdict.first_bad_id == 3 and "changed" in verdict.problem


def test_a_deleted_row_is_named(journal: Session) -> None:
    journal.execute(delete(AuditEvent).where(AuditEvent.id == 2))
    verdict = _verdict(journal)
    assert not verdict.ok and verdict.first_bad_id == 2


def test_deleting_the_newest_rows_shows_against_the_head(journal: Session) -> None:
    journal.execute(delete(AuditEvent).where(AuditEvent.id >= 4))
    verdict = _verdict(journal)
    assert not verdict.ok and verdict.first_bad_id == 4


def test_an_inserted_row_is_named(journal: Session) -> None:
    last = journal.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert last is not None
    forged = AuditEvent(
        id=6,
        time=last.time,
        actor="mallory",
        action="inference",
        outcome="success",
        target="",
        cohort="",
        params={},
        source="",
        prev_hash=last.hash,
        hash="f" * 64,
    )
    journal.add(forged)
    journal.flush()
    verdict = _verdict(journal)
    assert not verdict.ok and verdict.first_bad_id in (6, 5)


def test_secrets_and_patient_identity_never_reach_params(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        event = audit.record(
            session,
            "auth.token",
            params={"password": "x", "refresh_token": "y", "code": "z", "PatientName": "DOE", "grant_type": "password"},
        )
        assert event.params == {"grant_type": "password"}


def test_concurrent_appends_keep_one_chain(factory: sessionmaker[Session]) -> None:
    def append(worker: int) -> None:
        for number in range(20):
            with factory() as session:
                audit.record(session, "inference", target=f"{worker}.{number}")
                session.commit()

    threads = [threading.Thread(target=append, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with factory() as session:
        verdict = audit.verify(session)
    assert verdict.ok and verdict.events == 80
