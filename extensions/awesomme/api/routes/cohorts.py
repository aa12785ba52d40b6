"""``/api/cohorts``: cohorts, their members and the studies and series attached to them."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from awesomme.api import schemas
from awesomme.api.deps import CurrentPrincipal, DbSession, RowId
from awesomme.core import audit
from awesomme.core.errors import NotFound
from awesomme.orthanc.client import get_client
from awesomme.services import cohorts, deidentification

router = APIRouter(prefix="/cohorts", tags=["cohorts"], responses=schemas.errors(401, 403, 404, 409, 422))


class NewCohort(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=1024)
    identified: bool = Field(
        default=False, description="store data as sent (synthetic data only); by default a cohort de-identifies"
    )


class Attachment(BaseModel):
    study_uids: list[str] = Field(default_factory=list, max_length=1000)
    series_uids: list[str] = Field(default_factory=list, max_length=1000)


class MemberRole(BaseModel):
    role: str = Field(pattern="^(admin|member)$")


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a cohort (platform admins; you become its admin)")
def create(body: NewCohort, principal: CurrentPrincipal, session: DbSession) -> schemas.CohortView:
    view = cohorts.create_cohort(session, principal, body.name, body.description, body.identified)
    audit.record(
        session, "cohort.create", cohort=str(view.id), params={"name": body.name, "identified": body.identified}
    )
    return schemas.CohortView.model_validate(view.as_json())


@router.get("", summary="Your cohorts and your role in each (every cohort, for platform admins)")
def list_mine(principal: CurrentPrincipal, session: DbSession) -> list[schemas.CohortView]:
    return [schemas.CohortView.model_validate(view.as_json()) for view in cohorts.list_cohorts(session, principal)]


@router.get("/{cohort_id}", summary="One of your cohorts, with your role")
def get_one(cohort_id: RowId, principal: CurrentPrincipal, session: DbSession) -> schemas.CohortView:
    for view in cohorts.list_cohorts(session, principal):
        if view.id == cohort_id:
            return schemas.CohortView.model_validate(view.as_json())
    raise NotFound(f"no cohort {cohort_id}")


@router.post("/{cohort_id}/studies", summary="Attach studies and series you can see (admins of the cohort)")
def attach(cohort_id: RowId, body: Attachment, principal: CurrentPrincipal, session: DbSession) -> schemas.Attachment:
    items = cohorts.attach(session, get_client(), principal, cohort_id, body.study_uids, body.series_uids)
    target = " ".join([*body.study_uids, *body.series_uids])
    audit.record(session, "cohort.attach", target=target, cohort=str(cohort_id))
    return schemas.Attachment(cohort_id=cohort_id, attached=[schemas.AttachedItem(**item) for item in items])


@router.get("/{cohort_id}/members", summary="Members and their roles (admins of the cohort)")
def members(cohort_id: RowId, principal: CurrentPrincipal, session: DbSession) -> list[schemas.Member]:
    return [schemas.Member(**member) for member in cohorts.members_of(session, principal, cohort_id)]


@router.put(
    "/{cohort_id}/members/{username}",
    summary="Change a member's role (admins of the cohort); platform admins also add anyone. Others join by invite",
)
def set_member(
    cohort_id: RowId, username: str, body: MemberRole, principal: CurrentPrincipal, session: DbSession
) -> schemas.Member:
    change = cohorts.set_member(session, principal, cohort_id, username, body.role)
    audit.record(session, "membership.set", target=username, cohort=str(cohort_id), params=change)
    return schemas.Member(**change)


@router.delete(
    "/{cohort_id}/members/{username}", summary="Remove a member (admins of the cohort; never the last admin)"
)
def remove_member(cohort_id: RowId, username: str, principal: CurrentPrincipal, session: DbSession) -> schemas.Removed:
    cohorts.remove_member(session, principal, cohort_id, username)
    audit.record(session, "membership.remove", target=username, cohort=str(cohort_id))
    return schemas.Removed(status="removed", username=username)


@router.get("/{cohort_id}/deidentification", summary="The cohort's de-identification policy (its members)")
def read_deidentification(
    cohort_id: RowId, principal: CurrentPrincipal, session: DbSession
) -> schemas.DeidentificationPolicyOut:
    view = deidentification.read_policy(session, principal, cohort_id)
    return schemas.DeidentificationPolicyOut.model_validate(view.as_json())


@router.put("/{cohort_id}/deidentification", summary="Set the cohort's de-identification policy (platform admins)")
def set_deidentification(
    cohort_id: RowId, body: schemas.DeidentificationPolicyIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.DeidentificationPolicyOut:
    view = deidentification.set_policy(
        session, principal, cohort_id, body.identified, body.options, body.allow_burned_in
    )
    params = {"identified": view.identified, "options": view.options, "allow_burned_in": view.allow_burned_in}
    audit.record(session, "cohort.deidentification.set", cohort=str(cohort_id), params=params)
    return schemas.DeidentificationPolicyOut.model_validate(view.as_json())
