"""``/login``: the browser's login page (a plain form posting to ``/api/auth/session``, no scripts, nothing fetched
from elsewhere); the access middleware sends browsers here when they open ``/ohif/`` without a session."""

from __future__ import annotations

from html import escape
from importlib import resources
from string import Template
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

__all__ = ["DEFAULT_NEXT", "router", "safe_next"]

router = APIRouter(tags=["auth"])

DEFAULT_NEXT = "/ohif/"
_PAGE = Template(resources.files("awesomme.api").joinpath("templates/login.html").read_text(encoding="utf-8"))
_ERRORS = {
    "1": "Wrong username or password, or the account is disabled.",
    "throttled": "Too many failed logins: wait a few minutes, then try again.",
}
_HEADERS = {
    # Inline styles are all the page has: no script, no frame, forms only to ourselves.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # not no-referrer: browsers would then send "Origin: null" with the form
    "Cache-Control": "no-store",
}


def safe_next(target: str | None) -> str:
    """``target`` if it is a path of this site; anything else (``//host``, ``/\\host``, a URL) gives the viewer.

    Backslashes and control characters are refused outright: browsers read ``/\\host`` and ``/\\t/host`` as
    another site.
    """
    if not target or len(target) > 2048 or not target.startswith("/") or target.startswith("//"):
        return DEFAULT_NEXT
    if "\\" in target or any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return DEFAULT_NEXT
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return target


@router.get("/login", response_class=HTMLResponse, summary="The browser's login page; open to anyone")
async def login_page(
    next_page: Annotated[str, Query(alias="next")] = DEFAULT_NEXT,
    error: str = "",
) -> HTMLResponse:
    message = _ERRORS.get(error)
    page = _PAGE.substitute(
        next=escape(safe_next(next_page), quote=True),
        message=f'<p class="error" role="alert">{escape(message)}</p>' if message else "",
    )
    return HTMLResponse(page, headers=_HEADERS)
