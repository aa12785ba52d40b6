"""Invite codes against the real server: created by cohort admins, shown once, granting exactly their role.

Tests that make codes fail on purpose connect from loopback addresses of their own (the server trusts no
``X-Forwarded-For``), so the throttle they fill does not refuse other tests.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from awesomme.core.db import session_scope
from awesomme.core.security import hash_secret
from awesomme.models import Invite
from tests.integration.addresses import loopback_for, post_from
from tests.integration.conftest import Account, Cohorts, create_account

PASSWORD = "invited-password-123"


def _from(address: str) -> str:
    """The loopback address this test connects from, named after an address of the documentation ranges."""
    return loopback_for(f"invites {address}")


def _create(server_url: str, account: Account, cohort_id: int, **body: Any) -> httpx.Response:
    body = {"role": "member", "max_uses": 1, "expires_in_hours": 24, **body}
    return httpx.post(f"{server_url}/api/cohorts/{cohort_id}/invites", json=body, headers=account.headers(server_url))


def _code(server_url: str, account: Account, cohort_id: int, **body: Any) -> dict[str, Any]:
    reply = _create(server_url, account, cohort_id, **body)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def _register(server_url: str, username: str, code: str, address: str, password: str = PASSWORD) -> httpx.Response:
    body = {"username": username, "password": password, "code": code}
    return post_from(_from(address), f"{server_url}/api/auth/register", json=body)


def _redeem(server_url: str, headers: dict[str, str], code: str, address: str) -> httpx.Response:
    return post_from(_from(address), f"{server_url}/api/invites/redeem", json={"code": code}, headers=headers)


def _my_cohorts(server_url: str, account: Account) -> dict[int, str]:
    reply = httpx.get(f"{server_url}/api/cohorts", headers=account.headers(server_url))
    assert reply.status_code == 200, reply.text
    return {cohort["id"]: cohort["role"] for cohort in reply.json()}


def _uses(server_url: str, admin: Account, cohort_id: int, invite_id: int) -> int:
    listed = httpx.get(f"{server_url}/api/cohorts/{cohort_id}/invites", headers=admin.headers(server_url)).json()
    return int(next(invite["uses"] for invite in listed if invite["id"] == invite_id))


def test_a_code_is_a_long_secret_shown_once_and_stored_hashed(server_url: str, cohorts: Cohorts) -> None:
    created = _code(server_url, cohorts.alpha_admin, cohorts.alpha, role="member", max_uses=3, expires_in_hours=2)
    assert {"id", "code", "cohort_id", "role", "max_uses", "uses", "expires_at"} <= set(created)
    assert [created[key] for key in ("cohort_id", "role", "max_uses", "uses")] == [cohorts.alpha, "member", 3, 0]
    code = created["code"]
    assert len(code) * math.log2(64) >= 128  # urlsafe base64 of a random secret
    expires = datetime.fromisoformat(created["expires_at"])
    assert timedelta(hours=1.9) < expires - datetime.now(UTC) <= timedelta(hours=2)

    listed = httpx.get(
        f"{server_url}/api/cohorts/{cohorts.alpha}/invites", headers=cohorts.alpha_admin.headers(server_url)
    )
    assert listed.status_code == 200 and code not in listed.text
    assert all("code" not in invite for invite in listed.json())
    assert created["id"] in [invite["id"] for invite in listed.json()]
    with session_scope() as session:
        stored = session.get(Invite, created["id"])
        assert stored is not None and stored.code_hash == hash_secret(code)
        assert code not in [str(value) for value in vars(stored).values()]


def test_register_grants_exactly_the_codes_role(server_url: str, cohorts: Cohorts) -> None:
    for role in ("admin", "member"):
        code = _code(server_url, cohorts.alpha_admin, cohorts.alpha, role=role)["code"]
        username = f"invited.{role}"
        reply = _register(server_url, username, code, "192.0.2.10")
        assert reply.status_code == 201, reply.text
        assert {key: reply.json()[key] for key in ("username", "cohort_id", "role")} == {
            "username": username,
            "cohort_id": cohorts.alpha,
            "role": role,
        }
        newcomer = Account(username, PASSWORD)
        assert _my_cohorts(server_url, newcomer) == {cohorts.alpha: role}
        me = httpx.get(f"{server_url}/api/users/me", headers=newcomer.headers(server_url)).json()
        assert me["platform_admin"] is False


def test_a_refused_account_spends_no_use(server_url: str, cohorts: Cohorts) -> None:
    created = _code(server_url, cohorts.alpha_admin, cohorts.alpha)
    taken = _register(server_url, cohorts.beta_member.username, created["code"], "192.0.2.11")
    assert taken.status_code == 409 and "taken" in taken.json()["detail"]
    weak = _register(server_url, "weak.newcomer", created["code"], "192.0.2.11", password="short")
    assert weak.status_code == 422 and "12 characters" in weak.json()["detail"]
    odd = _register(server_url, "odd name!", created["code"], "192.0.2.11")
    assert odd.status_code == 422 and "username" in odd.json()["detail"]
    assert _uses(server_url, cohorts.alpha_admin, cohorts.alpha, created["id"]) == 0
    assert _register(server_url, "patient.newcomer", created["code"], "192.0.2.11").status_code == 201
    assert _uses(server_url, cohorts.alpha_admin, cohorts.alpha, created["id"]) == 1


def test_used_up_revoked_expired_and_unknown_codes_are_refused(server_url: str, cohorts: Cohorts) -> None:
    address = "192.0.2.12"
    used = _code(server_url, cohorts.alpha_admin, cohorts.alpha, max_uses=1)["code"]
    assert _register(server_url, "first.comer", used, address).status_code == 201
    reply = _register(server_url, "second.comer", used, address)
    assert reply.status_code == 410 and "used up" in reply.json()["detail"]

    revoked = _code(server_url, cohorts.alpha_admin, cohorts.alpha)
    headers = cohorts.alpha_admin.headers(server_url)
    assert httpx.delete(f"{server_url}/api/invites/{revoked['id']}", headers=headers).status_code == 200
    reply = _register(server_url, "revoked.comer", revoked["code"], address)
    assert reply.status_code == 410 and "revoked" in reply.json()["detail"]

    expired = _code(server_url, cohorts.alpha_admin, cohorts.alpha)
    with session_scope() as session:
        invite = session.get(Invite, expired["id"])
        assert invite is not None
        invite.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    reply = _register(server_url, "expired.comer", expired["code"], address)
    assert reply.status_code == 410 and "expired" in reply.json()["detail"]

    reply = _register(server_url, "unknown.comer", "not-a-code-" + "x" * 32, address)
    assert reply.status_code == 404 and reply.json()["detail"] == "unknown invite code"
    states = {
        invite["id"]: invite["state"]
        for invite in httpx.get(f"{server_url}/api/cohorts/{cohorts.alpha}/invites", headers=headers).json()
    }
    assert states[revoked["id"]] == "revoked" and states[expired["id"]] == "expired"


def test_redeem_adds_the_role_once(server_url: str, cohorts: Cohorts) -> None:
    joiner = create_account("invite.joiner")
    created = _code(server_url, cohorts.alpha_admin, cohorts.alpha, role="member", max_uses=5)
    headers = joiner.headers(server_url)
    reply = _redeem(server_url, headers, created["code"], "192.0.2.13")
    assert reply.status_code == 200, reply.text
    assert (reply.json()["cohort_id"], reply.json()["role"]) == (cohorts.alpha, "member")
    assert _my_cohorts(server_url, joiner) == {cohorts.alpha: "member"}
    again = _redeem(server_url, headers, created["code"], "192.0.2.13")
    assert again.status_code == 409
    admin_again = _redeem(server_url, cohorts.alpha_admin.headers(server_url), created["code"], "192.0.2.13")
    assert admin_again.status_code == 409
    assert _uses(server_url, cohorts.alpha_admin, cohorts.alpha, created["id"]) == 1
    assert httpx.post(f"{server_url}/api/invites/redeem", json={"code": created["code"]}).status_code == 401


def test_only_the_cohorts_admins_manage_its_codes(server_url: str, admin: Account, cohorts: Cohorts) -> None:
    beta_admin = create_account("beta.admin")
    url = f"{server_url}/api/cohorts/{cohorts.beta}/members/{beta_admin.username}"
    assert httpx.put(url, json={"role": "admin"}, headers=admin.headers(server_url)).status_code == 200
    alpha_code = _code(server_url, cohorts.alpha_admin, cohorts.alpha)

    assert _create(server_url, cohorts.alpha_member, cohorts.alpha).status_code == 403
    assert _create(server_url, beta_admin, cohorts.alpha).status_code == 404
    assert _create(server_url, cohorts.loner, cohorts.alpha).status_code == 403  # administers nothing at all
    assert _create(server_url, admin, cohorts.alpha, role="admin").status_code == 201  # platform admins may
    assert _create(server_url, beta_admin, cohorts.beta).status_code == 201
    anonymous = httpx.post(f"{server_url}/api/cohorts/{cohorts.alpha}/invites", json={"role": "member"})
    assert anonymous.status_code == 401

    listing = f"{server_url}/api/cohorts/{cohorts.alpha}/invites"
    assert httpx.get(listing, headers=beta_admin.headers(server_url)).status_code == 404
    assert httpx.get(listing, headers=cohorts.alpha_member.headers(server_url)).status_code == 403
    revoke = f"{server_url}/api/invites/{alpha_code['id']}"
    assert httpx.delete(revoke, headers=beta_admin.headers(server_url)).status_code == 404
    assert httpx.delete(revoke, headers=cohorts.alpha_member.headers(server_url)).status_code == 403
    assert httpx.delete(f"{server_url}/api/invites/999999", headers=admin.headers(server_url)).status_code == 404
    assert httpx.delete(revoke, headers=admin.headers(server_url)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"role": "owner"},
        {"max_uses": 0},
        {"max_uses": 1_000_000},
        {"expires_in_hours": 0},
        {"expires_in_hours": 24 * 365 * 10},
    ],
)
def test_codes_have_a_known_role_and_bounded_uses_and_life(
    server_url: str, cohorts: Cohorts, body: dict[str, Any]
) -> None:
    assert _create(server_url, cohorts.alpha_admin, cohorts.alpha, **body).status_code == 422


def test_failed_code_attempts_are_throttled_per_address_and_per_user(server_url: str, cohorts: Cohorts) -> None:
    good = _code(server_url, cohorts.alpha_admin, cohorts.alpha, max_uses=2)["code"]
    address = "198.51.100.40"
    for attempt in range(10):  # invite_failures_per_window
        assert _register(server_url, f"guesser.{attempt}", f"guess-{attempt}", address).status_code == 404
    refused = _register(server_url, "guesser.lucky", good, address)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert _register(server_url, "elsewhere.comer", good, "198.51.100.41").status_code == 201

    guesser = create_account("code.guesser")
    headers = guesser.headers(server_url)
    for attempt in range(10):  # from ever-new addresses: the user's own count stops them
        assert _redeem(server_url, headers, f"guess-{attempt}", f"198.51.101.{attempt}").status_code == 404
    refused = _redeem(server_url, headers, good, "198.51.101.200")
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert _uses(server_url, cohorts.alpha_admin, cohorts.alpha, _invite_id(good)) == 1


def _invite_id(code: str) -> int:
    with session_scope() as session:
        return session.scalars(select(Invite.id).where(Invite.code_hash == hash_secret(code))).one()
