"""The audit journal: an append-only, hash-chained table of every action of interest (DICOM PS3.15 A.5 in spirit).

Each event's ``hash`` is the sha256 of its content and of the previous event's hash; ids run without gaps. The
chain head (last id and hash) is kept in a second table, updated in the same transaction: editing, inserting or
deleting any row, the newest included, breaks the chain and ``verify`` names the first bad entry.

Appending first updates the head row, which takes the database's write lock (a row lock on PostgreSQL, the file
lock on SQLite) until the transaction ends: concurrent appends queue instead of forking the chain.

The head is also anchored outside the database, so a rewrite of the whole journal (rows removed and the hashes
after them recomputed, or the newest rows dropped and the head moved back) shows too: every transaction that
appended events adds, once committed, a line ``<event id> <hash> <HMAC-SHA256>`` to ``var/audit/anchor`` (mode
0600, opened append-only). The HMAC key lives outside the database (``AWESOMME_AUDIT_ANCHOR_KEY``, or
``var/audit/anchor.key`` made on first use), so whoever can only write the database cannot forge an anchor line.
``verify`` checks every line's signature and that the newest anchored event is still in the journal with the
anchored hash: the chain links it to every earlier event. What the anchor cannot see: someone who can also
rewrite the anchor file with its key (the platform's own OS account); keep the file append-only for that account
(``chattr +a``) or copy its lines to another host.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event as orm_event
from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from awesomme.models import AuditEvent, AuditHead

__all__ = [
    "Anchor",
    "AuditContext",
    "Outcome",
    "acting_user",
    "audit_context",
    "note_actor",
    "record",
    "record_alone",
    "record_denied",
    "record_view",
    "verify",
]

logger = logging.getLogger(__name__)

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
    # Params every event of the request carries (the personal access token it came with: ``pat_id``).
    extra: dict[str, Any] = field(default_factory=dict)


audit_context: ContextVar[AuditContext | None] = ContextVar("awesomme_audit", default=None)


_USERNAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def note_actor(username: str) -> None:
    """Who a not-yet-authenticated request claims to be (a login attempt); anything unlike a username is not kept."""
    context = audit_context.get()
    if context is not None:
        context.actor = username if _USERNAME.match(username) else "anonymous"


def acting_user() -> str:
    """Who the request being served acts as (its authenticated user); "platform" for the platform's own work."""
    context = audit_context.get()
    return context.actor if context is not None and context.actor != "anonymous" else "platform"


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
        params=_clean({**(params or {}), **(context.extra if context else {})}),
        source=(source if source is not None else (context.source if context else "local"))[:64],
        prev_hash=head.last_hash,
    )
    event.hash = _digest(event)
    session.add(event)
    head.last_id, head.last_hash = event.id, event.hash
    session.flush()
    session.info[_APPENDED] = True  # the anchor is written once the transaction commits
    if context is not None:
        context.recorded = True
    return event


# -- the anchor: the chain head, signed, outside the database ----------------------------------------------------
_APPENDED = "awesomme_audit_appended"
_ANCHORED = "awesomme_audit_anchor"


class AnchorBroken(Exception):
    """The anchor file holds a line that its key did not sign."""


@dataclass(frozen=True)
class Anchor:
    """``path``: the append-only file of signed heads; ``key``: the HMAC key, kept outside the database."""

    path: Path
    key: bytes

    @classmethod
    def of(cls, settings: Any) -> Anchor:
        """The platform's anchor (``settings``: ``awesomme.core.config.Settings``); makes the key on first use."""
        directory = Path(settings.audit_dir)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if settings.audit_anchor_key:
            return cls(directory / "anchor", settings.audit_anchor_key.encode())
        return cls(directory / "anchor", _key_file(directory / "anchor.key"))

    def _mac(self, event_id: int, event_hash: str) -> str:
        return hmac.new(self.key, f"{event_id} {event_hash}".encode(), hashlib.sha256).hexdigest()

    def append(self, event_id: int, event_hash: str) -> None:
        line = f"{event_id} {event_hash} {self._mac(event_id, event_hash)}\n".encode()
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line)  # one short write to an O_APPEND file: lines of several writers never mix
        finally:
            os.close(descriptor)

    def newest(self) -> tuple[int, str] | None:
        """The anchored (id, hash) with the highest id, every line's signature checked; None without a file."""
        if not self.path.exists():
            return None
        newest: tuple[int, str] | None = None
        with self.path.open(encoding="ascii", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                parts = line.split()
                valid = len(parts) == 3 and parts[0].isdigit() and len(parts[1]) == 64
                if not valid or not hmac.compare_digest(parts[2], self._mac(int(parts[0]), parts[1])):
                    raise AnchorBroken(f"line {number} of {self.path} is not signed with the anchor key")
                if newest is None or int(parts[0]) > newest[0]:
                    newest = (int(parts[0]), parts[1])
        return newest


def _key_file(path: Path) -> bytes:
    """The key in ``path`` (0600); the first process to need it makes it, atomically (link fails if it exists)."""
    if not path.exists():
        draft = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, secrets.token_hex(32).encode())
        finally:
            os.close(descriptor)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise AnchorBroken(f"{path} holds no usable key")
    return key


def _platform_anchor(session: Session) -> Anchor | None:
    """The anchor of the platform whose database ``session`` writes to; None for any other database (tests)."""
    from awesomme.core.config import get_settings

    try:
        settings = get_settings()
        if session.get_bind().engine.url != make_url(settings.db_url):
            return None
        return Anchor.of(settings)
    except Exception:
        logger.exception("the journal's anchor is not available")
        return None


@orm_event.listens_for(Session, "before_commit")
def _read_head_before_commit(session: Session) -> None:
    # The head as this transaction commits it (savepoints rolled back included): what the anchor must name.
    if session.info.pop(_APPENDED, False):
        row = session.execute(select(AuditHead.last_id, AuditHead.last_hash).where(AuditHead.id == 1)).one_or_none()
        if row is not None:
            session.info[_ANCHORED] = (row.last_id, row.last_hash)


@orm_event.listens_for(Session, "after_commit")
def _anchor_after_commit(session: Session) -> None:
    head = session.info.pop(_ANCHORED, None)
    if head is None:
        return
    anchor = _platform_anchor(session)
    if anchor is None:
        return
    try:
        anchor.append(*head)
    except OSError:  # the event is committed: an anchor that cannot be written must be seen in the logs
        logger.exception("could not anchor the journal at event %s", head[0])


@orm_event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_APPENDED, None)
    session.info.pop(_ANCHORED, None)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    events: int
    problem: str = ""
    first_bad_id: int | None = None
    anchored_id: int | None = None  # the newest event anchored outside the database, when an anchor was checked


def _events(session: Session) -> Iterator[Any]:
    """Plain rows, not ORM objects: a chain check reads every event once, and rows are several times cheaper."""
    table = AuditEvent.__table__
    yield from session.execute(select(table).order_by(table.c.id).execution_options(yield_per=5000))


def verify(session: Session, anchor: Anchor | None = None) -> Verdict:
    """Walk the chain from the first event; the first row that does not fit is named. With ``anchor``, the newest
    anchored event must still be there with its anchored hash."""
    try:
        anchored = anchor.newest() if anchor is not None else None  # read first: later events only add to it
    except AnchorBroken as broken:
        return Verdict(False, 0, str(broken))
    expected_id, previous, count = 1, GENESIS, 0
    anchored_hash_seen = ""
    for event in _events(session):
        if event.id != expected_id:
            bad = expected_id if event.id > expected_id else event.id
            return Verdict(False, count, f"event {expected_id} is missing (next is {event.id})", bad)
        if event.prev_hash != previous:
            return Verdict(False, count, f"event {event.id} does not follow event {event.id - 1}", event.id)
        if _digest(event) != event.hash:
            return Verdict(False, count, f"event {event.id} was changed after it was written", event.id)
        if anchored is not None and event.id == anchored[0]:
            anchored_hash_seen = event.hash
        previous, expected_id, count = event.hash, expected_id + 1, count + 1
    head = session.get(AuditHead, 1)
    last_id, last_hash = (head.last_id, head.last_hash) if head else (0, GENESIS)
    if last_id != count or last_hash != previous:
        first_missing = count + 1 if last_id > count else count
        return Verdict(
            False, count, f"the chain head names event {last_id}, the journal ends at {count}", first_missing
        )
    if anchor is None:
        return Verdict(True, count)
    if anchored is None:
        if count == 0:
            return Verdict(True, count)
        return Verdict(False, count, f"the journal has {count} events but {anchor.path} anchors none", 1)
    anchored_id, anchored_hash = anchored
    if anchored_id > count:
        problem = f"event {anchored_id} is anchored outside the database, the journal ends at {count}"
        return Verdict(False, count, problem, count + 1)
    if not hmac.compare_digest(anchored_hash_seen, anchored_hash):
        problem = f"event {anchored_id} is not the one anchored outside the database: the journal was rewritten"
        return Verdict(False, count, problem, anchored_id)
    return Verdict(True, count, anchored_id=anchored_id)


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


# At most this many 'access.denied' events per caller and minute: one caller cannot flood the journal.
DENIED_PER_CALLER_MINUTE = 30
_denied_lock = threading.Lock()
_denied_minute = ""
_denied_seen: set[tuple[str, str, str]] = set()
_denied_per_caller: dict[tuple[str, str], int] = {}


def record_denied(actor: str, source: str, target: str, params: dict[str, Any]) -> bool:
    """'access.denied' for a refused call of a route that journals nothing of its own (a read, mostly): once per
    caller, target and minute, and at most ``DENIED_PER_CALLER_MINUTE`` targets per caller and minute. True when
    written. Anonymous callers count per address."""
    global _denied_minute
    minute = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M")
    caller = (actor, source if actor == "anonymous" else "")
    with _denied_lock:
        if minute != _denied_minute:
            _denied_minute = minute
            _denied_seen.clear()
            _denied_per_caller.clear()
        key = (*caller, target)
        if key in _denied_seen or _denied_per_caller.get(caller, 0) >= DENIED_PER_CALLER_MINUTE:
            return False
        _denied_seen.add(key)
        _denied_per_caller[caller] = _denied_per_caller.get(caller, 0) + 1
    record_alone("access.denied", Outcome.DENIED, target=target, params=params, actor=actor, source=source)
    return True
