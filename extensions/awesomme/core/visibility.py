"""Who is calling, and which data they may see: the principal and the visibility derived from their cohorts.

A series is visible through a cohort holding its whole study, or the series itself; a SEG is visible wherever its
source series is (derived objects belong to their source's cohorts). Platform admins see everything.

Visibility fails closed: code running outside a request (a worker thread, a job, a command) sees nothing until it
names its scope with ``visible_as`` (the platform's own jobs and platform admins: ``EVERYTHING``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from awesomme.models import CohortItem, CohortRole, Membership, Segmentation, User

__all__ = [
    "EVERYTHING",
    "JOB_COHORTS_FIELD",
    "NOTHING",
    "Principal",
    "Visibility",
    "cohorts_of_series",
    "current_visibility",
    "load_principal",
    "visibility_of",
    "visibility_of_cohorts",
    "visible_as",
]


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    platform_admin: bool
    roles: dict[int, str] = field(default_factory=dict)  # cohort id -> admin | member
    personal_token: int | None = None  # the id of the personal access token the caller came with, if any

    def role_in(self, cohort_id: int) -> str | None:
        return CohortRole.ADMIN if self.platform_admin else self.roles.get(cohort_id)

    def administers(self, cohort_id: int) -> bool:
        return self.role_in(cohort_id) == CohortRole.ADMIN

    @property
    def in_any_cohort(self) -> bool:
        return self.platform_admin or bool(self.roles)

    @property
    def administers_any(self) -> bool:
        return self.platform_admin or CohortRole.ADMIN in self.roles.values()

    @property
    def administered(self) -> set[int]:
        return {cohort for cohort, role in self.roles.items() if role == CohortRole.ADMIN}


def load_principal(session: Session, user: User) -> Principal:
    roles = {m.cohort_id: m.role for m in session.scalars(select(Membership).where(Membership.user_id == user.id))}
    return Principal(user.id, user.username, user.is_platform_admin, roles)


@dataclass(frozen=True)
class Visibility:
    """What a caller sees. ``everything`` is for platform admins and the platform's own jobs."""

    everything: bool = False
    studies: frozenset[str] = frozenset()  # whole studies
    series: frozenset[str] = frozenset()  # single series, and the SEGs derived from visible series
    partial_studies: frozenset[str] = frozenset()  # studies seen only through some of their series

    def sees_series(self, study_uid: str, series_uid: str) -> bool:
        return self.everything or study_uid in self.studies or series_uid in self.series

    def sees_study(self, study_uid: str) -> bool:
        """Whether the study shows in a search (perhaps with only some of its series)."""
        return self.everything or study_uid in self.studies or study_uid in self.partial_studies

    def sees_whole_study(self, study_uid: str) -> bool:
        return self.everything or study_uid in self.studies


EVERYTHING = Visibility(everything=True)
NOTHING = Visibility()
# Jobs (training, batch inference, scoring, active learning) carry their scope in this request field: the cohorts
# of the cohort admin who started them, or None for a platform admin's (everything). A job without it sees nothing.
JOB_COHORTS_FIELD = "awesomme_cohorts"
# Set for each request by the access middleware, and by each job for its scope; unset, nothing is visible.
current_visibility: ContextVar[Visibility] = ContextVar("awesomme_visibility", default=NOTHING)


@contextmanager
def visible_as(visibility: Visibility) -> Iterator[Visibility]:
    """Run the block with ``visibility`` as the current scope (a job's cohorts, or ``EVERYTHING`` for the platform)."""
    marker = current_visibility.set(visibility)
    try:
        yield visibility
    finally:
        current_visibility.reset(marker)


def visibility_of(session: Session, principal: Principal, cohorts: Iterable[int] | None = None) -> Visibility:
    """What ``principal`` sees, optionally narrowed to some of their cohorts."""
    if principal.platform_admin and cohorts is None:
        return EVERYTHING
    wanted = set(principal.roles) if cohorts is None else set(cohorts)
    if not principal.platform_admin:
        wanted &= set(principal.roles)
    return visibility_of_cohorts(session, wanted)


def visibility_of_cohorts(session: Session, cohorts: set[int]) -> Visibility:
    if not cohorts:
        return Visibility()
    items = list(session.scalars(select(CohortItem).where(CohortItem.cohort_id.in_(cohorts))))
    studies = {item.study_uid for item in items if not item.series_uid}
    series = {item.series_uid for item in items if item.series_uid}
    partial = {item.study_uid for item in items if item.series_uid} - studies
    if series:
        derived = session.scalars(select(Segmentation.seg_series_uid).where(Segmentation.source_series_uid.in_(series)))
        series |= set(derived)
    return Visibility(False, frozenset(studies), frozenset(series), frozenset(partial))


def cohorts_of_series(session: Session, study_uid: str, series_uid: str) -> set[int]:
    """The cohorts a series belongs to (a SEG: those of its source series)."""
    source = session.get(Segmentation, series_uid)
    uids = {series_uid} | ({source.source_series_uid} if source is not None else set())
    query = select(CohortItem.cohort_id).where(
        or_(
            (CohortItem.study_uid == study_uid) & (CohortItem.series_uid == ""),
            CohortItem.series_uid.in_(uids),
        )
    )
    return set(session.scalars(query))
