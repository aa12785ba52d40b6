"""The one door of our routes' dependencies: the caller (set by the access middleware), a database session, the
datastore, and the types of the identifiers a route takes (row ids, DICOM UIDs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from monailabel.interfaces.utils.app import app_instance
from pydantic import Field
from sqlalchemy.orm import Session

from awesomme.core.db import SQL_INT_MAX, session_scope
from awesomme.core.errors import Unauthorized
from awesomme.core.visibility import Principal, Visibility
from awesomme.orthanc.datastore import OrthancDatastore

__all__ = [
    "SQL_INT_MAX",
    "UID_PATTERN",
    "CurrentDatastore",
    "CurrentPrincipal",
    "CurrentVisibility",
    "DbSession",
    "DicomUid",
    "RowId",
    "UidPath",
    "UidQuery",
    "client_address",
]

# Row ids and offsets are SQL integers (64 bits, core/db.py): a larger number is refused with the other invalid
# input (422).
RowId = Annotated[int, Path(ge=1, le=SQL_INT_MAX)]

# A DICOM UID (PS3.5 9.1): dot-separated numbers, at most 64 characters.
UID_PATTERN = r"^[0-9]+(\.[0-9]+)*$"
DicomUid = Annotated[str, Field(min_length=3, max_length=64, pattern=UID_PATTERN)]  # in a JSON body
UidPath = Annotated[str, Path(min_length=3, max_length=64, pattern=UID_PATTERN)]
UidQuery = Annotated[str, Query(min_length=3, max_length=64, pattern=UID_PATTERN)]


def _principal(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):  # only reachable if a route's rule said ANYONE by mistake
        raise Unauthorized("log in first")
    return principal


def _visibility(request: Request) -> Visibility:
    _principal(request)
    visibility = request.state.visibility
    assert isinstance(visibility, Visibility)
    return visibility


def _session() -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, before the answer leaves (scope
    "function"), rolled back when it raises."""
    with session_scope() as session:
        yield session


def _datastore() -> OrthancDatastore:
    """The app's datastore (MONAI Label's contract on our Orthanc), which reads through the caller's visibility."""
    datastore = app_instance().datastore()
    assert isinstance(datastore, OrthancDatastore)
    return datastore


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


CurrentPrincipal = Annotated[Principal, Depends(_principal)]
CurrentVisibility = Annotated[Visibility, Depends(_visibility)]
CurrentDatastore = Annotated[OrthancDatastore, Depends(_datastore)]
DbSession = Annotated[Session, Depends(_session, scope="function")]
