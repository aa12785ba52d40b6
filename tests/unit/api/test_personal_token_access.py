"""The access table keeps personal access tokens away from token management, the password and logging out."""

from __future__ import annotations

from awesomme.api.access import ROUTES


def test_no_personal_access_token_manages_tokens_changes_the_password_or_logs_out() -> None:
    guarded = {key for key, rule in ROUTES.items() if not rule.personal_tokens}
    token_routes = {key for key in ROUTES if key[1].startswith("/api/users/") and "/tokens" in key[1]}
    assert len(token_routes) == 5  # mine: create, list, revoke; anyone's (platform admins): list, revoke
    assert guarded == token_routes | {("POST", "/api/users/me/password"), ("POST", "/api/auth/logout")}
