"""Accounts against the real server: who am I, my password, and the platform admins' list of users."""

from __future__ import annotations

import httpx

from tests.integration.conftest import Account, Cohorts, create_account


def test_me_shows_my_cohorts_and_roles(server_url: str, admin: Account, cohorts: Cohorts) -> None:
    me = httpx.get(f"{server_url}/api/users/me", headers=cohorts.alpha_admin.headers(server_url))
    assert me.status_code == 200
    assert me.json() == {
        "username": cohorts.alpha_admin.username,
        "platform_admin": False,
        "cohorts": [{"id": cohorts.alpha, "name": "alpha", "role": "admin"}],
    }
    loner = httpx.get(f"{server_url}/api/users/me", headers=cohorts.loner.headers(server_url)).json()
    assert loner["cohorts"] == []
    assert httpx.get(f"{server_url}/api/users/me", headers=admin.headers(server_url)).json()["platform_admin"] is True
    assert httpx.get(f"{server_url}/api/users/me").status_code == 401


def test_changing_my_password_ends_my_old_tokens(server_url: str) -> None:
    account = create_account("password.changer")
    headers = account.headers(server_url)
    url = f"{server_url}/api/users/me/password"
    new_password = "a-brand-new-password-1"
    wrong = httpx.post(url, json={"current_password": "not it", "new_password": new_password}, headers=headers)
    assert wrong.status_code == 401
    weak = httpx.post(url, json={"current_password": account.password, "new_password": "short"}, headers=headers)
    assert weak.status_code == 422 and "12 characters" in weak.json()["detail"]
    done = httpx.post(url, json={"current_password": account.password, "new_password": new_password}, headers=headers)
    assert done.status_code == 200
    assert httpx.get(f"{server_url}/api/users/me", headers=headers).status_code == 401
    form = {"grant_type": "password", "username": account.username}
    assert httpx.post(f"{server_url}/api/auth/token", data={**form, "password": account.password}).status_code == 401
    Account(account.username, new_password).headers(server_url)


def test_platform_admins_list_and_create_accounts(server_url: str, admin: Account, cohorts: Cohorts) -> None:
    headers = admin.headers(server_url)
    listed = httpx.get(f"{server_url}/api/users", headers=headers)
    assert listed.status_code == 200
    accounts = {user["username"]: user for user in listed.json()}
    assert accounts[admin.username] == {"username": admin.username, "platform_admin": True, "active": True}
    assert accounts[cohorts.alpha_member.username]["platform_admin"] is False
    assert all(set(user) == {"username", "platform_admin", "active"} for user in listed.json())  # no hashes

    for username, platform_admin in (("made.by.admin", False), ("second.admin", True)):
        made = Account(username, f"{username}-password")
        body = {"username": made.username, "password": made.password, "platform_admin": platform_admin}
        created = httpx.post(f"{server_url}/api/users", json=body, headers=headers)
        assert created.status_code == 201, created.text
        assert created.json() == {"username": username, "platform_admin": platform_admin, "active": True}
        me = httpx.get(f"{server_url}/api/users/me", headers=made.headers(server_url))
        assert me.json()["platform_admin"] is platform_admin

    taken = {"username": "made.by.admin", "password": "another-password-1"}
    assert httpx.post(f"{server_url}/api/users", json=taken, headers=headers).status_code == 409
    weak = httpx.post(f"{server_url}/api/users", json={"username": "weak.one", "password": "short"}, headers=headers)
    assert weak.status_code == 422


def test_only_platform_admins_see_or_create_accounts(server_url: str, cohorts: Cohorts) -> None:
    body = {"username": "not.allowed", "password": "not-allowed-password"}
    for account in (cohorts.alpha_admin, cohorts.alpha_member, cohorts.loner):
        headers = account.headers(server_url)
        assert httpx.get(f"{server_url}/api/users", headers=headers).status_code == 403
        assert httpx.post(f"{server_url}/api/users", json=body, headers=headers).status_code == 403
    assert httpx.get(f"{server_url}/api/users").status_code == 401
