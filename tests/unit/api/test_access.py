"""The route table covers every route of the server, and nothing else (default deny has no blind spot)."""

from __future__ import annotations

from pathlib import Path

from fastapi.routing import iter_route_contexts

from awesomme.api.access import ROUTES, Access, access_table_markdown, route_key


def _app_routes() -> set[tuple[str, str]]:
    from awesomme.server import app

    keys: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.router.routes):
        keys.update(route_key(getattr(context, "methods", None), str(context.path)))
    return keys


def test_every_route_has_exactly_one_rule() -> None:
    routes = _app_routes()
    assert routes - set(ROUTES) == set(), "routes without an access rule"
    assert set(ROUTES) - routes == set(), "rules for routes that do not exist"


def test_unfiltered_monailabel_routes_are_gone() -> None:
    routes = _app_routes()
    assert ("POST", "/reload") not in routes
    assert not any(path.startswith("/proxy/dicom/qido") for _, path in routes)


def test_writes_to_the_whole_store_are_platform_admin_only() -> None:
    for key in [("PUT", "/model/{model}"), ("DELETE", "/model/{model}"), ("DELETE", "/datastore/image")]:
        assert ROUTES[key].access == Access.PLATFORM_ADMIN
    anyone = {path for (_, path), rule in ROUTES.items() if rule.access == Access.ANYONE}
    assert not any(path.startswith(("/datastore", "/infer", "/dicom-web", "/train")) for path in anyone)


def test_the_docs_show_the_table_of_the_code() -> None:
    docs = Path(__file__).resolve().parents[3] / "docs" / "access.md"
    assert docs.read_text() == access_table_markdown(), "run: awesomme access-table > docs/access.md"
