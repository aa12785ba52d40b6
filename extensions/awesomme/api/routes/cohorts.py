"""``/api/cohorts``: cohorts, their members and the studies and series attached to them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from awesomme.api.deps import CurrentPrincipal, RowId
from awesomme.core import audit
from awesomme.core.db import session_scope
from awesomme.core.errors import NotFound
from awesomme.orthanc.client import get_client
from awesomme.services import cohorts

router = APIRouter(prefix="/cohorts", tags=["cohorts"])


class NewCohort(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    description: str = Field(default="", max_length=1024)


class Attachment(BaseModel):
    study_uids: list[str] = Field(default_factory=list, max_length=1000)
    series_uids: list[str] = Field(default_factory=list, max_length=1000)


class MemberRole(BaseModel):
    role: str = Field(pattern="^(admin|member)$")


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a cohort (platform admins; you become its admin)")
async def create(body: NewCohort, principal: CurrentPrincipal) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        with session_scope() as session:
            view = cohorts.create_cohort(session, principal, body.name, body.description)
            audit.record(session, "cohort.create", cohort=str(view.id), params={"name": body.name})
            return view.as_json()

    return await run_in_threadpool(work)


@router.get("", summary="Your cohorts and your role in each (every cohort, for platform admins)")
async def list_mine(principal: CurrentPrincipal) -> list[dict[str, Any]]:
    def work() -> list[dict[str, Any]]:
        with session_scope() as session:
            return [view.as_json() for view in cohorts.list_cohorts(session, principal)]

    return await run_in_threadpool(work)


@router.get("/{cohort_id}", summary="One of your cohorts, with your role")
async def get_one(cohort_id: RowId, principal: CurrentPrincipal) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        with session_scope() as session:
            for view in cohorts.list_cohorts(session, principal):
                if view.id == cohort_id:
                    return view.as_json()
        raise NotFound(f"no cohort {cohort_id}")

    return await run_in_threadpool(work)


@router.post("/{cohort_id}/studies", summary="Attach studies and series you can see (admins of the cohort)")
async def attach(cohort_id: RowId, body: Attachment, principal: CurrentPrincipal) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        with session_scope() as session:
            items = cohorts.attach(session, get_client(), principal, cohort_id, body.study_uids, body.series_uids)
            target = " ".join([*body.study_uids, *body.series_uids])
            audit.record(session, "cohort.attach", target=target, cohort=str(cohort_id))
        return {"cohort_id": cohort_id, "attached": items}

    return await run_in_threadpool(work)


@router.get("/{cohort_id}/members", summary="Members and their roles (admins of the cohort)")
async def members(cohort_id: RowId, principal: CurrentPrincipal) -> list[dict[str, str]]:
    def work() -> list[dict[str, str]]:
        with session_scope() as session:
            return cohorts.members_of(session, principal, cohort_id)

    return await run_in_threadpool(work)


@router.put(
    "/{cohort_id}/members/{username}",
    summary="Change a member's role (admins of the cohort); platform admins also add anyone. Others join by invite",
)
async def set_member(cohort_id: RowId, username: str, body: MemberRole, principal: CurrentPrincipal) -> dict[str, str]:
    def work() -> dict[str, str]:
        with session_scope() as session:
            change = cohorts.set_member(session, principal, cohort_id, username, body.role)
            audit.record(session, "membership.set", target=username, cohort=str(cohort_id), params=change)
            return change

    return await run_in_threadpool(work)


@router.delete(
    "/{cohort_id}/members/{username}", summary="Remove a member (admins of the cohort; never the last admin)"
)
async def remove_member(cohort_id: RowId, username: str, principal: CurrentPrincipal) -> dict[str, str]:
    def work() -> None:
        with session_scope() as session:
            cohorts.remove_member(session, principal, cohort_id, username)
            audit.record(session, "membership.remove", target=username, cohort=str(cohort_id))

    await run_in_threadpool(work)
    return {"status": "removed", "username": username}
