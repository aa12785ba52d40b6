"""``/api/audit``: the audit journal, filtered and paged, as JSON or CSV (platform admins)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from awesomme.api import schemas
from awesomme.api.deps import SQL_INT_MAX, CurrentPrincipal, DbSession
from awesomme.core.csv_writer import write_dict_csv
from awesomme.core.errors import Forbidden
from awesomme.models import AuditEvent

router = APIRouter(tags=["audit"], responses=schemas.errors(401, 403, 422))
COLUMNS = ("id", "time", "actor", "action", "outcome", "target", "cohort", "params", "source", "prev_hash", "hash")


class AuditFilter(BaseModel):
    user: str | None = Field(default=None, max_length=64, description="username of the actor")
    action: str | None = Field(default=None, max_length=64)
    cohort: str | None = Field(default=None, max_length=256, description="cohort id")
    since: datetime | None = Field(default=None, description="ISO 8601, inclusive")
    until: datetime | None = Field(default=None, description="ISO 8601, exclusive")
    limit: int = Field(default=100, ge=1, le=10_000)
    offset: int = Field(default=0, ge=0, le=SQL_INT_MAX)

    def query(self) -> Select[AuditEvent]:
        query = select(AuditEvent).order_by(AuditEvent.id)
        if self.user:
            query = query.where(AuditEvent.actor == self.user)
        if self.action:
            query = query.where(AuditEvent.action == self.action)
        if self.cohort:
            query = query.where(AuditEvent.cohort == self.cohort)
        if self.since:
            query = query.where(AuditEvent.time >= self.since)
        if self.until:
            query = query.where(AuditEvent.time < self.until)
        return query.limit(self.limit).offset(self.offset)


Filters = Annotated[AuditFilter, Depends()]


def _rows(session: Session, filters: AuditFilter) -> list[schemas.AuditEventOut]:
    events = session.scalars(filters.query())
    return [schemas.AuditEventOut(**_columns(event)) for event in events]


def _columns(event: AuditEvent) -> dict[str, Any]:
    return {column: getattr(event, column) for column in COLUMNS} | {"time": event.time.isoformat()}


def _platform_admin(principal: CurrentPrincipal) -> None:
    if not principal.platform_admin:  # second line behind the route table
        raise Forbidden("the audit journal is for platform admins")


@router.get("/audit", summary="Audit events, oldest first, filtered and paged; platform admins")
def events(principal: CurrentPrincipal, filters: Filters, session: DbSession) -> list[schemas.AuditEventOut]:
    _platform_admin(principal)
    return _rows(session, filters)


@router.get(
    "/audit.csv",
    summary="The same events as CSV; platform admins",
    response_class=schemas.CsvResponse,
    responses=schemas.text_errors(401, 403, 422),
)
def events_csv(principal: CurrentPrincipal, filters: Filters, session: DbSession) -> schemas.CsvResponse:
    _platform_admin(principal)
    rows = [row.model_dump() for row in _rows(session, filters)]
    cells = ({**row, "params": json.dumps(row["params"], sort_keys=True)} for row in rows)
    text = write_dict_csv(COLUMNS, cells, lineterminator="\r\n")
    return schemas.CsvResponse(text, headers={"Content-Disposition": "attachment"})
