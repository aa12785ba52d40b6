"""The audit journal: an append-only, hash-chained table of every action of interest (DICOM PS3.15 A.5 in spirit).

Each event's ``hash`` is the sha256 of its content and of the previous event's hash; ids run without gaps. The
chain head (last id and hash) is kept in a second table, updated in the same transaction: editing, inserting or
deleting any row, the newest included, breaks the chain and ``verify`` names the first bad entry.

Appending first updates the head row, which takes the database's write lock (a row lock on PostgreSQL, the file
lock on SQLite) until the transaction ends: concurrent appends queue instead of forking the chain.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from awesomme.models import AuditEvent, AuditHead

__all__ = [
    "AuditContext",
    "Outcome",
    "audit_context",
    "note_actor",
    "record",
    "record_alone",
    "record_view",
    "verify",
]

GENESIS = "0" * 64
# Keys never written to params, whatever a caller passes (secrets and patient identity).
_SECRET_KEYS = re.compile(r"pass|secret|token|code|patient|authorization|cookie", re.IGNORECASE)


class Outcome:
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"


@dataclass
class AuditContext:
    """Who is acting and from where, for the request being served; ``recorded`` tells the middleware it is done."""

    actor: str = "anonymous"
    source: str = ""
    recorded: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


audit_context: ContextVar[AuditContext | None] = ContextVar("awesomme_audit", default=None)


_USERNAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def note_actor(username: str) -> None:
    """Who a not-yet-authenticated request claims to be (a login attempt); anything unlike a username is not kept."""
    context = audit_context.get()
    if context is not None:
        context.actor = username if _USERNAME.match(username) else "anonymous"


def _clean(params: dict[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (params or {}).items() if not _SECRET_KEYS.search(key)}


def _digest(event: Any) -> str:
    """The sha256 of an event's content and its predecessor's hash (``event``: a row or an ``AuditEvent``)."""
    content = {
        "id": event.id,
        "time": _utc(event.time).isoformat(),
        "actor": event.actor,
        "action": event.action,
        "outcome": event.outcome,
        "target": event.target,
        "cohort": event.cohort,
        "params": event.params,
        "source": event.source,
        "prev_hash": event.prev_hash,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _head(session: Session) -> AuditHead:
    # The UPDATE first: it takes the write lock before the head is read, so no other append can interleave.
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_id=AuditHead.last_id))
    head = session.get(AuditHead, 1, populate_existing=True)
    if head is None:
        head = AuditHead(id=1, last_id=0, last_hash=GENESIS)
        session.add(head)
        session.flush()
    return head


def record(
    session: Session,
    action: str,
    outcome: str = Outcome.SUCCESS,
    *,
    target: str = "",
    cohort: str = "",
    params: dict[str, Any] | None = None,
    actor: str | None = None,
    source: str | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (it commits or rolls back with the action)."""
    context = audit_context.get()
    head = _head(session)
    event = AuditEvent(
        id=head.last_id + 1,
        time=datetime.now(UTC),
        actor=actor or (context.actor if context else "platform"),
        action=action,
        outcome=outcome,
        target=target[:1024],
        cohort=cohort[:256],
        params=_clean(params),
        source=source if source is not None else (context.source if context else "local"),
        prev_hash=head.last_hash,
    )
    event.hash = _digest(event)
    session.add(event)
    head.last_id, head.last_hash = event.id, event.hash
    session.flush()
    if context is not None:
        context.recorded = True
    return event


@dataclass(frozen=True)
class Verdict:
    ok: bool
    events: int
    problem: str = ""
    first_bad_id: int | None = None


def _events(session: Session) -> Iterator[Any]:
    """Plain rows, not ORM objects: a chain check reads every event once, and rows are several times cheaper."""
    table = AuditEvent.__table__
    yield from session.execute(select(table).order_by(table.c.id).execution_options(yield_per=5000))


def verify(session: Session) -> Verdict:
    """Walk the chain from the first event; the first row that does not fit is named."""
    expected_id, previous, count = 1, GENESIS, 0
    for event in _events(session):
        if event.id != expected_id:
            bad = expected_id if event.id > expected_id else event.id
            return Verdict(False, count, f"event {expected_id} is missing (next is {event.id})", bad)
        if event.prev_hash != previous:
            return Verdict(False, count, f"event {event.id} does not follow event {event.id - 1}", event.id)
        if _digest(event) != event.hash:
            return Verdict(False, count, f"event {event.id} was changed after it was written", event.id)
        previous, expected_id, count = event.hash, expected_id + 1, count + 1
    head = session.get(AuditHead, 1)
    last_id, last_hash = (head.last_id, head.last_hash) if head else (0, GENESIS)
    if last_id != count or last_hash != previous:
        first_missing = count + 1 if last_id > count else count
        return Verdict(
            False, count, f"the chain head names event {last_id}, the journal ends at {count}", first_missing
        )
    return Verdict(True, count)


def record_alone(action: str, outcome: str, **details: Any) -> None:
    """An event in a transaction of its own: for outcomes whose action wrote nothing (a refused login)."""
    from awesomme.core.db import session_scope  # the journal's writers all share the platform's engine

    with session_scope() as session:
        record(session, action, outcome, **details)


_views_seen: set[tuple[str, str, str]] = set()


def record_view(study_uid: str) -> None:
    """'data.viewed', once per user, study and hour (a viewer fetches a study in hundreds of requests)."""
    from awesomme.core.db import session_scope

    context = audit_context.get()
    actor = context.actor if context else "platform"
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    key = (actor, study_uid, hour.isoformat())
    if key in _views_seen:
        return
    with session_scope() as session:
        seen = session.scalar(
            select(AuditEvent.id).where(
                AuditEvent.action == "data.viewed",
                AuditEvent.actor == actor,
                AuditEvent.target == study_uid,
                AuditEvent.time >= hour,
            )
        )
        if seen is None:
            record(session, "data.viewed", target=study_uid)
    if len(_views_seen) > 100_000:  # an hour's worth is plenty; older keys only cost a DB check
        _views_seen.clear()
    _views_seen.add(key)
