"""Errors the API turns into clear 4xx answers (see ``awesomme.server``)."""

from __future__ import annotations

__all__ = [
    "AwesommeError",
    "Conflict",
    "Forbidden",
    "Gone",
    "InvalidInput",
    "NotFound",
    "OrthancUnavailable",
    "TooManyRequests",
    "Unauthorized",
]


class AwesommeError(Exception):
    status_code = 400


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
