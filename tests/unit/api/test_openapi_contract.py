"""The OpenAPI schema describes every answer of our ``/api``: a named model (or a list of one), a CSV or HTML
media type, or an empty 204; and the error bodies each route sends."""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts

# Handlers that await something for real (reading a request body by hand); every other one is a plain def, which
# FastAPI runs in its thread pool.
ASYNC_HANDLERS = {("POST", "/api/classification/{model}/predict")}
TEXT_MEDIA_TYPES = ("text/csv", "text/html")


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    from awesomme.server import app

    return app.openapi()


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    paths = _schema()["paths"]
    found = [
        (method.upper(), path, operation)
        for path, operations in paths.items()
        if path.startswith("/api/")
        for method, operation in operations.items()
    ]
    assert len(found) > 40, "the /api routes are missing from the schema"
    return found


def _is_named_model(schema: dict[str, Any]) -> bool:
    if "$ref" in schema:
        return schema["$ref"].startswith("#/components/schemas/")
    return schema.get("type") == "array" and "$ref" in schema.get("items", {})


def test_every_api_answer_has_a_declared_shape() -> None:
    vague = []
    for method, path, operation in _operations():
        successes = {code: answer for code, answer in operation["responses"].items() if code.startswith("2")}
        if not successes:
            vague.append(f"{method} {path}: no 2xx answer")
        for code, answer in successes.items():
            content = answer.get("content", {})
            if code == "204":
                if content:
                    vague.append(f"{method} {path}: a 204 with a body")
                continue
            if any(media.startswith(TEXT_MEDIA_TYPES) for media in content):
                continue
            schema = content.get("application/json", {}).get("schema", {})
            if not _is_named_model(schema):
                vague.append(f"{method} {path} {code}: {schema or 'no schema'}")
    assert vague == []


def test_every_api_route_declares_its_error_bodies() -> None:
    """Each declares the errors it sends (4xx; /api/health, open to anyone, its 503), as JSON named models."""
    undeclared = []
    names = set(_schema()["components"]["schemas"])
    assert {"ErrorBody", "InvalidBody"} <= names
    for method, path, operation in _operations():
        errors = {code: answer for code, answer in operation["responses"].items() if code.startswith(("4", "5"))}
        if not errors:
            undeclared.append(f"{method} {path}")
        for code, answer in errors.items():
            schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
            if not _is_named_model(schema):
                undeclared.append(f"{method} {path} {code}")
    assert undeclared == []


def test_the_error_body_is_a_reason() -> None:
    error = _schema()["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["detail"]
    assert error["properties"]["detail"]["type"] == "string"


def test_a_prediction_has_one_shape() -> None:
    paths = _schema()["paths"]
    made = paths["/api/classification/{model}/predict"]["post"]["responses"]["201"]
    listed = paths["/api/predictions"]["get"]["responses"]["200"]
    made_schema = made["content"]["application/json"]["schema"]
    listed_schema = listed["content"]["application/json"]["schema"]
    assert made_schema["$ref"] == listed_schema["items"]["$ref"] == "#/components/schemas/Prediction"


def test_csv_and_html_answers_say_their_media_type() -> None:
    for method, path, operation in _operations():
        if path.endswith(".csv"):
            assert "text/csv" in operation["responses"]["200"]["content"], f"{method} {path}"
        if path.endswith(".html"):
            assert "text/html" in operation["responses"]["200"]["content"], f"{method} {path}"


def test_blocking_handlers_are_plain_functions() -> None:
    from awesomme.server import app

    coroutines: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.router.routes):
        route, path = context.original_route, str(context.path)
        if isinstance(route, APIRoute) and path.startswith("/api/") and inspect.iscoroutinefunction(route.endpoint):
            coroutines.update((method, path) for method in route.methods or ())
    assert coroutines == ASYNC_HANDLERS
