"""Bad input answered with a short 4xx, on every route (ours and MONAI Label's).

- ``FiniteJsonMiddleware``: Python's JSON reader accepts ``NaN``, ``Infinity`` and ``1e999`` (infinite), which are not
  JSON; a handler that then echoes or stores such a number fails later (Starlette's ``JSONResponse`` refuses to
  write them: a 500). A JSON request body holding one is refused with a 422 before any route reads it.
- ``validation_error``: FastAPI's 422 quotes each invalid ``input`` whole; ours quotes a short excerpt of it.
- ``http_error``: an ``HTTPException``'s detail (MONAI Label writes client input into some) is cut the same way.
- ``monailabel_error``: MONAI Label's own exceptions for bad input (an unknown model, a missing image) are a 4xx,
  never a 500, and name no server path.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from email.message import Message as MimeHeader
from typing import Any

from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from monailabel.interfaces.exception import (
    ImageNotFoundException,
    LabelNotFoundException,
    MONAILabelError,
    MONAILabelException,
)
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from awesomme.core.errors import EXCERPT_CHARS, MAX_MESSAGE, excerpt

__all__ = [
    "FiniteJsonMiddleware",
    "http_error",
    "monailabel_error",
    "non_finite_number",
    "public_input",
    "validation_error",
]

_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# An excerpt of a list or mapping: kept as it is when its JSON text is this short, else quoted as cut text.
_SMALL_JSON = 2 * EXCERPT_CHARS
_LARGEST_SHOWN_INT = 2**64


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NonFinite(excerpt(text, 32))
    return value


def non_finite_number(body: bytes) -> str | None:
    """The first NaN or infinite number in a JSON text, or None (also when it is not JSON at all: FastAPI says so)."""
    try:
        json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except _NonFinite as error:
        return str(error)
    except (ValueError, RecursionError):
        return None
    return None


def _is_json(scope: Scope) -> bool:
    """FastAPI reads a body as JSON when its type is ``application/json`` or ``application/*+json`` (strict content
    types: a body without a type is not read as JSON, so it is not held here either)."""
    raw = dict(scope.get("headers") or []).get(b"content-type")
    if raw is None:
        return False
    header = MimeHeader()
    header["content-type"] = raw.decode("latin-1")
    subtype = header.get_content_subtype()
    return header.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


class FiniteJsonMiddleware:
    """Refuses a JSON request body holding NaN or an infinite number (422), before the route reads it.

    Only JSON bodies are read ahead (whole, as FastAPI reads them anyway), and only up to ``max_bytes``: a larger one
    goes on untouched for FastAPI's own size limit to refuse. DICOM and other streamed bodies are never held.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        held: list[Message] = []
        size, complete = 0, False
        while size <= self.max_bytes:
            message = await receive()
            held.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                complete = True
                break
        if complete and size:
            problem = non_finite_number(b"".join(message.get("body", b"") for message in held))
            if problem is not None:
                detail = f"the JSON body holds {problem}: JSON numbers must be finite (NaN and Infinity are not JSON)"
                await JSONResponse({"detail": detail}, status_code=422)(scope, receive, send)
                return

        async def replay() -> Message:
            return held.pop(0) if held else await receive()

        await self.app(scope, replay, send)


def public_input(value: Any, depth: int = 0) -> Any:
    """What an error answer may show of a client's value: short values as they are, long ones as a cut excerpt.

    NaN and infinities become text (a JSON answer cannot hold them), as does anything that is not JSON.
    """
    if value is None or isinstance(value, bool) or (isinstance(value, str) and len(value) <= EXCERPT_CHARS):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return value if abs(value) < _LARGEST_SHOWN_INT else f"an integer of {value.bit_length()} bits"
    if isinstance(value, Mapping | Sequence) and not isinstance(value, str | bytes | bytearray) and depth < 4:
        items = list(value.items()) if isinstance(value, Mapping) else list(enumerate(value))
        if len(items) <= 8:
            shown = (
                {excerpt(key): public_input(item, depth + 1) for key, item in items}
                if isinstance(value, Mapping)
                else [public_input(item, depth + 1) for _, item in items]
            )
            text = json.dumps(shown, default=str)
            if len(text) <= _SMALL_JSON:
                return shown
        return excerpt(_as_text(value))
    return excerpt(value)


def _as_text(value: Any) -> str:
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def _public_error(error: Mapping[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "type": excerpt(error.get("type", "")),
        "loc": [part if isinstance(part, int) else excerpt(part) for part in error.get("loc", ())],
        "msg": excerpt(error.get("msg", ""), MAX_MESSAGE),
    }
    if "input" in error:
        shown["input"] = public_input(error["input"])
    context = error.get("ctx")
    if isinstance(context, Mapping):
        shown["ctx"] = {excerpt(key): public_input(value) for key, value in context.items()}
    return shown


async def validation_error(_request: Request, error: Exception) -> Response:
    """FastAPI's 422 (a list of ``{type, loc, msg, input, ctx}``), quoting at most an excerpt of each input."""
    assert isinstance(error, RequestValidationError)
    return JSONResponse({"detail": [_public_error(item) for item in error.errors()]}, status_code=422)


# MONAI Label answers some requests that lack an input with a 500: they are the client's error (4xx).
_MONAILABEL_CLIENT_ERRORS = {
    "Neither Image nor File not Session ID input is provided": (
        422,
        "name the image to run on: ?image=<SeriesInstanceUID>, a file, or a session_id",
    ),
}


async def http_error(request: Request, error: Exception) -> Response:
    """FastAPI's answer to an ``HTTPException``, with a text detail cut to ``MAX_MESSAGE`` characters."""
    assert isinstance(error, HTTPException)
    if isinstance(error.detail, str):
        if error.status_code == 500 and error.detail in _MONAILABEL_CLIENT_ERRORS:
            error.status_code, error.detail = _MONAILABEL_CLIENT_ERRORS[error.detail]
        error.detail = excerpt(error.detail, MAX_MESSAGE)
    return await http_exception_handler(request, error)


_SERVER_PATH = re.compile(r"(?:/[\w.~-]+){2,}/?")


async def monailabel_error(_request: Request, error: Exception) -> Response:
    """MONAI Label's exceptions: an image or label it cannot find is a 404, its ``INVALID_INPUT`` a 422; any other
    is the server's own failure and stays a 500 (raised again: logged with its traceback)."""
    assert isinstance(error, MONAILabelException)
    if isinstance(error, ImageNotFoundException | LabelNotFoundException):
        return JSONResponse({"detail": "no such image or label"}, status_code=404)
    if error.error == MONAILabelError.INVALID_INPUT:
        message = _SERVER_PATH.sub("<path>", str(error.msg))
        return JSONResponse({"detail": excerpt(message, MAX_MESSAGE)}, status_code=422)
    raise error
