"""Sample grants: the one download 3D Slicer's MONAI Label module makes without credentials.

The module asks ``POST /activelearning/{strategy}`` with its token, then fetches the sample with
``urllib.request.urlretrieve(f"{server}/datastore/image?image=...")``, which sends no Authorization header and
no cookie. The authenticated answer therefore grants that user one download of that series, from the address
that asked, for ``GRANT_SECONDS``; the access middleware lets an unauthenticated ``GET /datastore/image`` through
only by consuming such a grant, as its user, and the answer is journaled as theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from awesomme.core import audit
from awesomme.models import SampleGrant, User

__all__ = ["GRANT_SECONDS", "Granted", "consume", "grant"]

GRANT_SECONDS = 300  # the module downloads at once; a grant left unused dies within minutes


@dataclass(frozen=True)
class Granted:
    id: int
    user_id: int


def grant(session: Session, username: str, series_uid: str, address: str) -> int | None:
    """A grant of one download of ``series_uid`` to ``username`` from ``address`` (journaled); None when the
    caller is not a user (a job outside a request)."""
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None or not address or address == "unknown":
        return None
    now = datetime.now(UTC)
    record = SampleGrant(
        user_id=user.id,
        series_uid=series_uid[:64],
        address=address[:64],
        created_at=now,
        expires_at=now + timedelta(seconds=GRANT_SECONDS),
    )
    session.add(record)
    session.flush()
    audit.record(  # the route's own event (``sample.next``): the series given, and the download granted with it
        session,
        "sample.next",
        target=series_uid,
        params={"grant": record.id, "address": address[:64], "expires_in_s": GRANT_SECONDS},
        actor=user.username,
        source=address,
    )
    return record.id


def consume(session: Session, series_uid: str, address: str) -> Granted | None:
    """Use the oldest live grant of ``series_uid`` to ``address``: at most once, whoever asks concurrently (the
    update only succeeds on an unused row). None when there is none, or its user was suspended."""
    if not series_uid or len(series_uid) > 64:
        return None
    now = datetime.now(UTC)
    candidates = session.scalars(
        select(SampleGrant.id)
        .where(
            SampleGrant.series_uid == series_uid,
            SampleGrant.address == address[:64],
            SampleGrant.used_at.is_(None),
            SampleGrant.expires_at > now,
        )
        .order_by(SampleGrant.id)
    ).all()
    for grant_id in candidates:
        used = session.execute(
            update(SampleGrant)
            .where(SampleGrant.id == grant_id, SampleGrant.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if used.rowcount == 1:  # type: ignore[attr-defined]
            record = session.get(SampleGrant, grant_id)
            assert record is not None
            user = session.get(User, record.user_id)
            if user is None or not user.is_active:
                return None
            return Granted(grant_id, user.id)
    return None
