"""Errors the API turns into clear 4xx answers (see ``awesomme.server``)."""

from __future__ import annotations

__all__ = ["AwesommeError", "InvalidInput", "NotFound", "OrthancUnavailable"]


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


class OrthancUnavailable(AwesommeError):
    status_code = 503
