"""Typed dependencies of our routes: the caller (set by the access middleware) and a DB session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from awesomme.core.db import SQL_INT_MAX
from awesomme.core.errors import Unauthorized
from awesomme.core.visibility import Principal, Visibility

__all__ = ["SQL_INT_MAX", "CurrentPrincipal", "CurrentVisibility", "RowId", "client_address"]

# Row ids and offsets are SQL integers (64 bits, core/db.py): a larger number is refused with the other invalid
# input (422).
RowId = Annotated[int, Path(ge=1, le=SQL_INT_MAX)]


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


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


CurrentPrincipal = Annotated[Principal, Depends(_principal)]
CurrentVisibility = Annotated[Visibility, Depends(_visibility)]
