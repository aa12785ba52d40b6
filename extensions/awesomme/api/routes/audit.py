"""``/api/audit``: the audit journal, filtered and paged, as JSON or CSV (platform admins).

An event of several cohorts stores their ids in one field, joined by spaces (or, in events from before, commas):
the journal is hash-chained, so old events keep their text and the cohort filter reads both. The CSV streams every
matching event unless ``limit`` is given.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Select, String, func, literal, or_, select
from sqlalchemy.orm import Session

from awesomme.api import schemas
from awesomme.api.deps import SQL_INT_MAX, CurrentPrincipal, DbSession
from awesomme.core.csv_writer import write_csv, write_dict_csv
from awesomme.core.db import session_scope
from awesomme.core.errors import Forbidden
from awesomme.models import AuditEvent

router = APIRouter(tags=["audit"], responses=schemas.errors(401, 403, 422))
DEFAULT_LIMIT = 100
CSV_BATCH = 1000
COLUMNS = ("id", "time", "actor", "action", "outcome", "target", "cohort", "params", "source", "prev_hash", "hash")


class AuditFilter(BaseModel):
    user: str | None = Field(default=None, max_length=64, description="username of the actor")
    action: str | None = Field(default=None, max_length=64)
    cohort: str | None = Field(
        default=None, pattern=r"^[0-9]{1,18}$", description="cohort id: its events, those of several cohorts included"
    )
    since: datetime | None = Field(default=None, description="ISO 8601, inclusive")
    until: datetime | None = Field(default=None, description="ISO 8601, exclusive")
    limit: int | None = Field(default=None, ge=1, le=10_000, description="JSON: 100 when not given; CSV: all")
    offset: int = Field(default=0, ge=0, le=SQL_INT_MAX)

    def query(self, default_limit: int | None = DEFAULT_LIMIT) -> Select[AuditEvent]:
        query = select(AuditEvent).order_by(AuditEvent.id)
        if self.user:
            query = query.where(AuditEvent.actor == self.user)
        if self.action:
            query = query.where(AuditEvent.action == self.action)
        if self.cohort:
            query = query.where(_in_cohort(self.cohort))
        if self.since:
            query = query.where(AuditEvent.time >= self.since)
        if self.until:
            query = query.where(AuditEvent.time < self.until)
        limit = self.limit or default_limit
        return (query.limit(limit) if limit else query).offset(self.offset)


def _in_cohort(cohort_id: str) -> ColumnElement[bool]:
    """Events of one cohort: its own, and those of several cohorts that list it."""
    listed = literal(" ", String) + func.replace(AuditEvent.cohort, ",", " ", type_=String) + literal(" ", String)
    return or_(AuditEvent.cohort == cohort_id, listed.like(f"% {cohort_id} %"))


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
def events_csv(principal: CurrentPrincipal, filters: Filters) -> StreamingResponse:
    _platform_admin(principal)
    return StreamingResponse(
        _csv_lines(filters), media_type=schemas.CsvResponse.media_type, headers={"Content-Disposition": "attachment"}
    )


def _csv_lines(filters: AuditFilter) -> Iterator[str]:
    """The header, then the events in batches, read as they are sent (a plain generator: it runs on a worker
    thread, with its own database session)."""
    yield write_csv(COLUMNS, [], lineterminator="\r\n")
    with session_scope() as session:
        events = session.scalars(filters.query(default_limit=None).execution_options(yield_per=CSV_BATCH))
        batch: list[dict[str, Any]] = []
        for event in events:
            row = schemas.AuditEventOut(**_columns(event)).model_dump()
            batch.append({**row, "params": json.dumps(row["params"], sort_keys=True)})
            if len(batch) == CSV_BATCH:
                yield _body(batch)
                batch = []
        if batch:
            yield _body(batch)


def _body(rows: list[dict[str, Any]]) -> str:
    """Rows without the header line (the one writer writes both: its header line is cut)."""
    return write_dict_csv(COLUMNS, rows, lineterminator="\r\n").split("\r\n", 1)[1]
