"""Failure throttling for password checks and invite codes, kept in the platform database.

Every attempt is written as a failure *before* it is evaluated (``reserve``), and turned back into nothing when it
succeeds (``forgive``, in the caller's transaction). Reserving counts and inserts in one transaction that first
takes the throttle's lock row (an UPDATE: a row lock on PostgreSQL, the write lock on SQLite), so parallel
attempts queue for the count: with a limit of 5, 15 parallel wrong guesses get 5 evaluations and 10 refusals.
The rows live in the database, so every server process (and a restart) sees the same counts.

Limits are counted in one sliding window (``login_failure_window_s``), from the narrowest to the widest:

- per subject *and* address (``login_failures_per_user``, 5): one address guessing one account's password is
  stopped first; the same account from any other address is not affected;
- per address (``login_failures_per_address``, 20): one address guessing many accounts;
- per subject from all addresses (``login_failures_per_account``, 30): only a guesser spread over several
  addresses (at least 30 / 5 = 6 of them) locks the account itself, and then everywhere, the right password
  included, until the window has passed.

So five wrong guesses from one address slow that address for that account; they do not lock ``admin`` out for
its real owner, who logs in from another address. The client address is the TCP peer, or what a proxy listed in
``AWESOMME_TRUSTED_PROXIES`` forwarded: nobody else's ``X-Forwarded-For`` counts.

A refused attempt (429) is not itself a failure: it is not evaluated, so it does not prolong the lock-out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, delete, func, select, update
from sqlalchemy.orm import Session

from awesomme.core.db import session_scope
from awesomme.core.errors import TooManyRequests
from awesomme.models import FailedAttempt, ThrottleLock

__all__ = ["FailureThrottle", "Limits", "Reservation"]

_MAX_SUBJECT = 128
_MAX_ADDRESS = 64


@dataclass(frozen=True)
class Limits:
    """Failures allowed per window; ``None`` leaves that count out."""

    per_address: int
    per_subject_at_address: int | None = None
    per_subject: int | None = None


@dataclass(frozen=True)
class Reservation:
    """The failure row written for one attempt: it stays a failure unless the attempt is forgiven."""

    attempt_id: int


class FailureThrottle:
    """Failures of one kind (``scope``: ``login``, ``invite``), counted per subject and client address."""

    def __init__(self, scope: str, window_s: float, limits: Limits, what: str) -> None:
        self.scope = scope
        self.window_s = window_s
        self.limits = limits
        self.what = what

    def reserve(self, subject: str, address: str) -> Reservation:
        """Refuse (429) when a limit is reached; otherwise record this attempt as a failure and return it."""
        subject, address = subject[:_MAX_SUBJECT], address[:_MAX_ADDRESS]
        now = time.time()
        cutoff = now - self.window_s
        with session_scope() as session:
            # The lock row first: no other reservation counts or inserts until this transaction ends.
            session.execute(update(ThrottleLock).where(ThrottleLock.id == 1).values(taken=ThrottleLock.taken + 1))
            session.execute(delete(FailedAttempt).where(FailedAttempt.at <= cutoff))
            for limit, where in self._counted(subject, address):
                count, oldest = session.execute(
                    select(func.count(), func.min(FailedAttempt.at)).where(FailedAttempt.scope == self.scope, where)
                ).one()
                if count >= limit:
                    retry_after = max(1, int(oldest + self.window_s - now) + 1)
                    raise TooManyRequests(f"too many failed {self.what}: try again in {retry_after} s", retry_after)
            attempt = FailedAttempt(scope=self.scope, subject=subject, address=address, at=now)
            session.add(attempt)
            session.flush()
            return Reservation(attempt.id)

    def _counted(self, subject: str, address: str) -> list[tuple[int, ColumnElement[bool]]]:
        limits = self.limits
        counted: list[tuple[int, ColumnElement[bool]]] = []
        if subject and limits.per_subject_at_address is not None:
            pair = and_(FailedAttempt.subject == subject, FailedAttempt.address == address)
            counted.append((limits.per_subject_at_address, pair))
        counted.append((limits.per_address, FailedAttempt.address == address))
        if subject and limits.per_subject is not None:
            counted.append((limits.per_subject, FailedAttempt.subject == subject))
        return counted

    def forgive(self, reservation: Reservation, session: Session | None = None) -> None:
        """The attempt succeeded: it was no failure. In ``session`` (the caller's transaction) when given."""
        statement = delete(FailedAttempt).where(FailedAttempt.id == reservation.attempt_id)
        if session is not None:
            session.execute(statement)
            return
        with session_scope() as own:
            own.execute(statement)

    def clear(self) -> None:
        """Forget every failure of this kind (tests, and an operator lifting a lock-out)."""
        with session_scope() as session:
            session.execute(delete(FailedAttempt).where(FailedAttempt.scope == self.scope))
