"""Errors the API turns into clear 4xx answers (see ``awesomme.server``), and the excerpt rule for echoing input.

An answer never echoes more than a short excerpt of what the client sent: a message is cut to ``MAX_MESSAGE``
characters, and a piece of input quoted in one should go through ``excerpt``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "EXCERPT_CHARS",
    "MAX_MESSAGE",
    "AwesommeError",
    "Conflict",
    "Forbidden",
    "Gone",
    "InvalidInput",
    "NotFound",
    "OrthancUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "excerpt",
]

# How much of a client's input an answer may quote, and the longest message an error carries.
EXCERPT_CHARS = 64
MAX_MESSAGE = 500


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """``value`` as text, cut to ``limit`` characters (an ellipsis says it was cut)."""
    text = value.decode("utf-8", errors="replace") if isinstance(value, bytes | bytearray) else str(value)
    return text if len(text) <= limit else text[:limit] + "…"


class AwesommeError(Exception):
    status_code = 400

    def __init__(self, message: str = "", *args: object) -> None:
        # Messages quote names and values the client sent: however long those were, the answer stays short.
        super().__init__(excerpt(message, MAX_MESSAGE), *args)


class NotFound(AwesommeError):
    status_code = 404


class InvalidInput(AwesommeError):
    status_code = 422


class Conflict(AwesommeError):
    status_code = 409


class Unauthorized(AwesommeError):
    status_code = 401


class Forbidden(AwesommeError):
    status_code = 403


class Gone(AwesommeError):
    """The thing existed but cannot be used any more (an expired, used-up or revoked invite code)."""

    status_code = 410


class TooManyRequests(AwesommeError):
    status_code = 429

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OrthancUnavailable(AwesommeError):
    status_code = 503
