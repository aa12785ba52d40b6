"""What someone with write access to the platform database does to hide events: the chain stays consistent."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from awesomme.core import audit
from awesomme.models import AuditEvent, AuditHead

__all__ = ["restore_journal", "rewrite_journal", "snapshot_journal", "truncate_journal"]


def snapshot_journal(session: Session) -> tuple[list[dict[str, Any]], tuple[int, str]]:
    table = AuditEvent.__table__
    rows = [dict(row._mapping) for row in session.execute(select(table).order_by(table.c.id))]
    head = session.get(AuditHead, 1)
    assert head is not None
    return rows, (head.last_id, head.last_hash)


def restore_journal(session: Session, snapshot: tuple[list[dict[str, Any]], tuple[int, str]]) -> None:
    rows, (last_id, last_hash) = snapshot
    session.execute(delete(AuditEvent))
    if rows:
        session.execute(insert(AuditEvent), rows)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_id=last_id, last_hash=last_hash))


def rewrite_journal(session: Session, removed: set[int]) -> None:
    """Drop the events ``removed``, renumber the rest without gaps, recompute every hash, move the head."""
    rows = [row for row in snapshot_journal(session)[0] if row["id"] not in removed]
    previous = audit.GENESIS
    for new_id, values in enumerate(rows, 1):
        values.update(id=new_id, prev_hash=previous)
        values["hash"] = previous = audit._digest(SimpleNamespace(**values))
    restore_journal(session, (rows, (len(rows), previous)))


def truncate_journal(session: Session, last_id: int) -> None:
    """Drop every event after ``last_id`` and move the head back to it."""
    session.execute(delete(AuditEvent).where(AuditEvent.id > last_id))
    last_hash = session.scalars(select(AuditEvent.hash).where(AuditEvent.id == last_id)).one()
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_id=last_id, last_hash=last_hash))
