"""Schemathesis over ``/api``, from the running server's own OpenAPI schema, as alpha's member and as a platform admin.

Every operation under ``/api`` (but the few that would end the run: see ``SPARED``) gets the examples and coverage
phases and ``AWESOMME_FUZZ_EXAMPLES`` fuzzed cases (valid and invalid), where the seeded ids and UIDs (alpha's and
beta's cohorts, studies, series, usernames, models) are mixed into the path and query parameters. Checks: no 5xx,
responses that match their schema and content type, and, as alpha's member, nothing of beta in any answer.

The member runs first: the admin's run changes memberships, bindings and attachments, which would make beta's
data alpha's. ``make fuzz`` runs it (``AWESOMME_FUZZ_EXAMPLES=20 make fuzz`` is the CI size: a few minutes).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import BaseSchema, Case, CheckContext, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.fuzz.conftest import CASES, Caller, Seeded, fuzz_examples
from tests.integration.addresses import next_loopback, requests_session_from

# Operations that would end the run: they revoke the caller's token, change its password, or end its session.
SPARED = ["POST /api/auth/logout", "POST /api/users/me/password", "DELETE /api/auth/session"]


def schema_conformance(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """The response's schema, but for our own 422s: ``{"detail": "..."}`` where FastAPI documents its list.

    The platform's ``InvalidInput`` answers 422 with a sentence; the schema documents 422 as FastAPI's validation
    error only (a known gap of the OpenAPI document, not of the answers).
    """
    if response.status_code == 422:
        try:
            if isinstance(json.loads(response.content).get("detail"), str):
                return None
        except (ValueError, AttributeError):
            pass
    return response_schema_conformance(ctx, response, case)


CHECKS = [not_a_server_error, schema_conformance, content_type_conformance]
FUZZ_SETTINGS = settings(
    max_examples=max(fuzz_examples(), 1),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
KEEP = object()  # a parameter left as generated


def load_api(server_url: str, known: dict[str, list[Any]]) -> BaseSchema:
    """The live schema, with ``known`` values drawn into the path and query parameters of those names."""
    schema = schemathesis.openapi.from_url(f"{server_url}/openapi.json")

    @schema.hook
    def flatmap_case(context: schemathesis.HookContext, case: Case) -> st.SearchStrategy[Case]:
        slots = [
            (location, name)
            for location in ("path_parameters", "query")
            for name in getattr(case, location) or {}
            if name in known
        ]
        if not slots:
            return st.just(case)

        def substitute(values: tuple[Any, ...]) -> Case:
            for (location, name), value in zip(slots, values, strict=True):
                if value is not KEEP:
                    setattr(case, location, {**getattr(case, location), name: value})
            return case

        return st.tuples(*(st.sampled_from([KEEP, *known[name]]) for _, name in slots)).map(substitute)

    return schema


@pytest.fixture(scope="session")
def member_api(server_url: str, seeded: Seeded) -> BaseSchema:
    uids = [seeded.alpha_series, seeded.beta_series, seeded.alpha_study, seeded.beta_study]
    known = {
        "cohort_id": [seeded.alpha_id, seeded.beta_id],
        "series_uid": uids,
        "username": list(seeded.usernames.values()),
        "name": list(seeded.model_names),
    }
    return load_api(server_url, known)


@pytest.fixture(scope="session")
def admin_api(server_url: str, seeded: Seeded) -> BaseSchema:
    uids = [seeded.alpha_series, seeded.beta_series, seeded.alpha_study, seeded.beta_study]
    known = {
        "cohort_id": [seeded.alpha_id, seeded.beta_id],
        "series_uid": uids,
        "username": [seeded.usernames["loner"]],  # memberships of the seeded people stay as they are
        "name": list(seeded.model_names),
    }
    return load_api(server_url, known)


# -- the leak check ---------------------------------------------------------------------------------------------
def _cohort_refs(value: Any, key: str | None = None) -> Iterator[Any]:
    """Every cohort id or name a JSON answer names (validation errors' echo of the request aside)."""
    if isinstance(value, dict):
        for name in ("cohort_id", "cohort"):
            if name in value:
                yield value[name]
        for name, item in value.items():
            if name not in ("input", "ctx"):
                yield from _cohort_refs(item, name)
    elif isinstance(value, list):
        for item in value:
            if key == "cohorts" and isinstance(item, dict):
                yield item.get("id")
                yield item.get("name")
            elif key == "cohorts":
                yield item
            yield from _cohort_refs(item, key)


def no_beta_for_alpha(seeded: Seeded) -> Callable[[CheckContext, Response, Case], None]:
    """Alpha's member must not learn beta's studies, series, patient, member, or the cohort itself."""
    secrets = {
        "beta's study": seeded.beta_study,
        "beta's series": seeded.beta_series,
        "beta's patient": seeded.beta_patient_id,
        "beta's member": seeded.usernames["beta_member"],
    }
    beta = {seeded.beta_id, str(seeded.beta_id), "beta"}

    def no_beta_leak(ctx: CheckContext, response: Response, case: Case) -> None:
        text = response.content.decode("utf-8", errors="replace")
        payload = response.request.body or b""
        sent = str(response.request.url) + (payload.decode(errors="replace") if isinstance(payload, bytes) else payload)
        leaked = [what for what, value in secrets.items() if value in text and value not in sent]
        assert not leaked, f"alpha's member got {', '.join(leaked)}: {text[:500]}"
        try:
            body = json.loads(text)
        except ValueError:
            return
        refs = list(_cohort_refs(body))
        if 200 <= response.status_code < 300 and case.operation.path in ("/api/cohorts", "/api/cohorts/{cohort_id}"):
            items = body if isinstance(body, list) else [body]  # cohorts themselves
            refs += [item.get(name) for item in items if isinstance(item, dict) for name in ("id", "name")]
        named = [ref for ref in refs if isinstance(ref, int | str) and ref in beta]
        assert not named, f"alpha's member got cohort beta ({named}): {text[:500]}"

    return no_beta_leak


def test_leak_check_finds_cohorts() -> None:
    """The custom check's walk: cohort ids and names in listings, not the request's echo in a validation error."""
    assert list(_cohort_refs([{"name": "m", "cohorts": [{"id": 1, "name": "alpha"}, {"id": 2}]}])) == [
        1,
        "alpha",
        2,
        None,
    ]
    assert set(_cohort_refs({"grant": {"cohort": "beta", "cohort_id": 2}})) == {"beta", 2}
    assert list(_cohort_refs({"detail": [{"loc": ["body"], "input": {"cohort_id": 2}}]})) == []


# -- the runs ---------------------------------------------------------------------------------------------------
def send(case: Case, caller: Caller, checks: list[Any]) -> None:
    headers = caller.headers()
    # From a loopback address of its own: the server trusts no X-Forwarded-For, and failed logins and codes sent
    # from one address would lock every later login of the run out.
    with requests_session_from(next_loopback()) as session:
        response = case.call(session=session, headers=headers, timeout=120)
    CASES[caller.name] += 1
    case.validate_response(response, checks=checks, headers=headers)


member_schema = schemathesis.pytest.from_fixture("member_api").include(path_regex="^/api/").exclude(name=SPARED)
admin_schema = schemathesis.pytest.from_fixture("admin_api").include(path_regex="^/api/").exclude(name=SPARED)


@member_schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_alpha_member(case: Case, member: Caller, seeded: Seeded) -> None:
    send(case, member, [*CHECKS, no_beta_for_alpha(seeded)])


@admin_schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_platform_admin(case: Case, platform_admin: Caller) -> None:
    send(case, platform_admin, CHECKS)


HUGE = 2**63  # one past the largest SQL integer


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/api/cohorts/{HUGE}", None),
        ("POST", f"/api/cohorts/{HUGE}/studies", {}),
        ("GET", f"/api/cohorts/{HUGE}/members", None),
        ("PUT", f"/api/cohorts/{HUGE}/members/nobody", {"role": "member"}),
        ("DELETE", f"/api/cohorts/{HUGE}/members/nobody", None),
        ("POST", f"/api/cohorts/{HUGE}/invites", {"role": "member", "expires_in_hours": 1}),
        ("GET", f"/api/cohorts/{HUGE}/invites", None),
        ("DELETE", f"/api/invites/{HUGE}", None),
        ("PUT", "/api/models/everything_mr/cohorts", {"cohorts": [HUGE]}),
        ("GET", f"/api/audit?offset={HUGE}", None),
        ("GET", f"/api/audit.csv?offset={HUGE}", None),
    ],
)
def test_numbers_past_sql_integers_are_invalid(
    server_url: str, platform_admin: Caller, method: str, path: str, body: Any
) -> None:
    """What the fuzzing found: such numbers reached the database driver, which cannot bind them (500s)."""
    reply = httpx.request(method, f"{server_url}{path}", json=body, headers=platform_admin.headers(), timeout=60)
    assert reply.status_code == 422, reply.text
