"""Cohorts: their members and roles, the studies and series attached, and the models bound to them.

Every function works inside the caller's DB session and checks the caller's right to act (see ``api.access`` for
the coarse route table; the per-cohort rules live here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from awesomme.analysis.classifier_config import ClassificationModelConfig
from awesomme.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from awesomme.core.visibility import Principal, visibility_of
from awesomme.inference.config import SegmentationModelConfig
from awesomme.models import Cohort, CohortItem, CohortRole, Membership, ModelBinding, User
from awesomme.orthanc.client import OrthancClient
from awesomme.orthanc.visible import visible_series_state
from awesomme.services.deidentification import refuse_unless_meets_policy

__all__ = [
    "CohortView",
    "attach",
    "bound_cohorts",
    "cohort_for_admin",
    "create_cohort",
    "ensure_cohort",
    "list_cohorts",
    "members_of",
    "remove_member",
    "set_binding",
    "set_member",
]

COHORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


@dataclass(frozen=True)
class CohortView:
    id: int
    name: str
    description: str
    role: str | None  # the caller's role there (admin for platform admins)
    members: int
    items: int
    identified: bool = False  # stores data as sent (else de-identifies: services.deidentification)

    def as_json(self) -> dict[str, object]:
        return self.__dict__.copy()


def _view(session: Session, cohort: Cohort, principal: Principal) -> CohortView:
    members = session.scalar(select(func.count()).select_from(Membership).where(Membership.cohort_id == cohort.id))
    items = session.scalar(select(func.count()).select_from(CohortItem).where(CohortItem.cohort_id == cohort.id))
    return CohortView(
        cohort.id,
        cohort.name,
        cohort.description,
        principal.role_in(cohort.id),
        members or 0,
        items or 0,
        bool(cohort.identified),
    )


def _cohort(session: Session, cohort_id: int) -> Cohort:
    cohort = session.get(Cohort, cohort_id)
    if cohort is None:
        raise NotFound(f"no cohort {cohort_id}")
    return cohort


def cohort_for_admin(session: Session, principal: Principal, cohort_id: int) -> Cohort:
    """The cohort, if the caller administers it (members get 403, others 404: a cohort's existence is private)."""
    cohort = _cohort(session, cohort_id)
    role = principal.role_in(cohort_id)
    if role is None:
        raise NotFound(f"no cohort {cohort_id}")
    if role != CohortRole.ADMIN:
        raise Forbidden(f"only an admin of cohort {cohort.name} may do this")
    return cohort


def create_cohort(
    session: Session, principal: Principal, name: str, description: str, identified: bool = False
) -> CohortView:
    """A new cohort, the caller its admin; it de-identifies what is stored into it unless created ``identified``."""
    if not COHORT_NAME.match(name):
        raise InvalidInput("a cohort name has 1 to 64 letters, digits, spaces, '.', '-' or '_', and starts alnum")
    if session.scalar(select(Cohort).where(Cohort.name == name)) is not None:
        raise Conflict(f"a cohort named {name} exists")
    cohort = Cohort(name=name, description=description, created_by=principal.username, identified=identified)
    session.add(cohort)
    session.flush()
    session.add(Membership(cohort_id=cohort.id, user_id=principal.user_id, role=CohortRole.ADMIN))
    session.flush()
    return _view(session, cohort, principal)


def ensure_cohort(session: Session, owner: User, name: str, description: str, identified: bool = False) -> Cohort:
    """The named cohort, created with ``owner`` as its admin when missing (demo data, scripts)."""
    cohort = session.scalar(select(Cohort).where(Cohort.name == name))
    if cohort is None:
        cohort = Cohort(name=name, description=description, created_by=owner.username, identified=identified)
        session.add(cohort)
        session.flush()
        session.add(Membership(cohort_id=cohort.id, user_id=owner.id, role=CohortRole.ADMIN))
        session.flush()
    return cohort


def list_cohorts(session: Session, principal: Principal) -> list[CohortView]:
    query = select(Cohort).order_by(Cohort.name)
    if not principal.platform_admin:
        query = query.where(Cohort.id.in_(principal.roles))
    return [_view(session, cohort, principal) for cohort in session.scalars(query)]


def attach(
    session: Session,
    orthanc: OrthancClient,
    principal: Principal,
    cohort_id: int,
    study_uids: list[str],
    series_uids: list[str],
) -> list[dict[str, str]]:
    """Attach studies and series the caller can already see (platform admins: anything in Orthanc)."""
    cohort = cohort_for_admin(session, principal, cohort_id)
    for uid in [*study_uids, *series_uids]:
        if not UID.match(uid) or len(uid) > 64:
            raise InvalidInput(f"{uid!r} is not a DICOM UID")
    if not study_uids and not series_uids:
        raise InvalidInput("name at least one study_uid or series_uid")
    visible = visibility_of(session, principal)
    wanted: list[tuple[str, str]] = []
    for study_uid in study_uids:
        if not orthanc.study_exists(study_uid) or not visible.sees_whole_study(study_uid):
            raise NotFound(f"no study {study_uid} that you may attach")
        wanted.append((study_uid, ""))
    for series_uid in series_uids:
        state = visible_series_state(orthanc, visible, series_uid)  # absent and not yours: the same 404
        wanted.append((state.study_uid, series_uid))
    for study_uid, series_uid in wanted:
        refuse_unless_meets_policy(orthanc, cohort, study_uid, series_uid)
    attached = []
    for study_uid, series_uid in wanted:
        exists = session.scalar(
            select(CohortItem).where(
                CohortItem.cohort_id == cohort.id,
                CohortItem.study_uid == study_uid,
                CohortItem.series_uid == series_uid,
            )
        )
        if exists is None:
            session.add(
                CohortItem(cohort_id=cohort.id, study_uid=study_uid, series_uid=series_uid, added_by=principal.username)
            )
        attached.append({"study_uid": study_uid, "series_uid": series_uid})
    session.flush()
    return attached


def attach_stored(session: Session, cohort_id: int, username: str, uids: set[tuple[str, str]]) -> None:
    """Series just stored through STOW join the cohort named in the request (the caller was checked before)."""
    for study_uid, series_uid in sorted(uids):
        exists = session.scalar(
            select(CohortItem).where(
                CohortItem.cohort_id == cohort_id,
                CohortItem.study_uid == study_uid,
                CohortItem.series_uid.in_(("", series_uid)),
            )
        )
        if exists is None:
            session.add(CohortItem(cohort_id=cohort_id, study_uid=study_uid, series_uid=series_uid, added_by=username))


# -- members ----------------------------------------------------------------------------------------------------
def members_of(session: Session, principal: Principal, cohort_id: int) -> list[dict[str, str]]:
    cohort_for_admin(session, principal, cohort_id)
    rows = session.execute(
        select(User.username, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.cohort_id == cohort_id)
        .order_by(User.username)
    )
    return [{"username": username, "role": role} for username, role in rows]


def _admin_count(session: Session, cohort_id: int) -> int:
    query = select(func.count()).select_from(Membership)
    query = query.where(Membership.cohort_id == cohort_id, Membership.role == CohortRole.ADMIN)
    return int(session.scalar(query) or 0)


def _membership(session: Session, cohort_id: int, username: str) -> tuple[User | None, Membership | None]:
    user = session.scalar(select(User).where(User.username == username))
    return user, (session.get(Membership, (cohort_id, user.id)) if user is not None else None)


def no_member(username: str) -> NotFound:
    """The same answer whether the account exists or not: a cohort admin learns nothing of other accounts."""
    return NotFound(f"no member {username[:64]}")


def set_member(session: Session, principal: Principal, cohort_id: int, username: str, role: str) -> dict[str, str]:
    """Change a member's role; the last admin cannot step down.

    Only platform admins add people directly: a cohort admin adds them with invite codes (their consent), so for
    anyone not already a member the answer is ``no member``, whether the account exists or not.
    """
    cohort_for_admin(session, principal, cohort_id)
    if role not in CohortRole.ALL:
        raise InvalidInput(f"role must be one of {', '.join(CohortRole.ALL)}")
    user, membership = _membership(session, cohort_id, username)
    if membership is None and not principal.platform_admin:
        raise no_member(username)
    if user is None:
        raise NotFound(f"no user {username[:64]}")
    if membership is None:
        session.add(Membership(cohort_id=cohort_id, user_id=user.id, role=role))
    else:
        if membership.role == CohortRole.ADMIN and role != CohortRole.ADMIN and _admin_count(session, cohort_id) == 1:
            raise Conflict(f"{username} is the cohort's last admin: make someone else admin first")
        membership.role = role
    session.flush()
    return {"username": username, "role": role}


def remove_member(session: Session, principal: Principal, cohort_id: int, username: str) -> None:
    cohort_for_admin(session, principal, cohort_id)
    _, membership = _membership(session, cohort_id, username)
    if membership is None:
        raise no_member(username)
    if membership.role == CohortRole.ADMIN and _admin_count(session, cohort_id) == 1:
        raise Conflict(f"{username} is the cohort's last admin and cannot be removed")
    session.delete(membership)


# -- model bindings ---------------------------------------------------------------------------------------------
def bound_cohorts(session: Session, config: SegmentationModelConfig | ClassificationModelConfig) -> set[int]:
    """The cohorts a model may run on: the DB binding when one was set, else the YAML's cohort names."""
    binding = session.get(ModelBinding, config.name)
    if binding is not None:
        return set(binding.cohort_ids)
    if not config.cohorts:
        return set()
    return set(session.scalars(select(Cohort.id).where(Cohort.name.in_(config.cohorts))))


def set_binding(session: Session, principal: Principal, model_name: str, cohorts: list[int | str]) -> list[int]:
    """Bind a model to cohorts given by id or name (replaces the YAML's list)."""
    ids: list[int] = []
    for ref in cohorts:
        query = select(Cohort.id).where(Cohort.id == ref if isinstance(ref, int) else Cohort.name == ref)
        cohort_id = session.scalar(query)
        if cohort_id is None:
            raise NotFound(f"no cohort {ref}")
        ids.append(cohort_id)
    binding = session.get(ModelBinding, model_name)
    if binding is None:
        session.add(ModelBinding(model_name=model_name, cohort_ids=sorted(set(ids)), updated_by=principal.username))
    else:
        binding.cohort_ids = sorted(set(ids))
        binding.updated_by = principal.username
    session.flush()
    return sorted(set(ids))
