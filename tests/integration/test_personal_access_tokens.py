"""Personal access tokens for scripts, against the real server and Orthanc: shown once and stored hashed, working
past the access token's lifetime, within their limits (read-only, one cohort, no token management), ended by
expiry, revocation, a password reset or a suspension, and journaled with their id.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from monailabel.client import MONAILabelClient
from monailabel.client.client import MONAILabelClientException
from sqlalchemy import select

from awesomme.core import security
from awesomme.core.config import get_settings
from awesomme.core.db import session_scope
from awesomme.models import AuditEvent, PersonalAccessToken, User
from awesomme.orthanc.client import OrthancClient
from awesomme.services import identity
from tests.integration.conftest import (
    Account,
    Cohorts,
    StoredPatient,
    attach_to_cohort,
    bind_model,
    create_account,
    store_patient,
)


class Data:
    def __init__(self, alpha: StoredPatient, beta: StoredPatient) -> None:
        self.alpha, self.beta = alpha, beta


@pytest.fixture(scope="module")
def data(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path_factory: pytest.TempPathFactory
) -> Data:
    out = tmp_path_factory.mktemp("pat-data")
    alpha = store_patient(orthanc, "osteosarcoma-mr", 1301, out / "a")
    beta = store_patient(orthanc, "osteosarcoma-mr", 1302, out / "b")
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[alpha.patient.study_uid])
    attach_to_cohort(server_url, admin, cohorts.beta, studies=[beta.patient.study_uid])
    bind_model(server_url, admin, "everything_mr", ["alpha"])
    return Data(alpha, beta)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _create(server_url: str, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"name": "script", "expires_in_days": 7, **fields}
    reply = httpx.post(f"{server_url}/api/users/me/tokens", json=body, headers=headers, timeout=60)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def _join(server_url: str, admin: Account, cohort: int, username: str, role: str = "member") -> None:
    url = f"{server_url}/api/cohorts/{cohort}/members/{username}"
    reply = httpx.put(url, json={"role": role}, headers=admin.headers(server_url))
    assert reply.status_code == 200, reply.text


def _events(action: str, pat_id: int) -> list[AuditEvent]:
    with session_scope() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        return [row for row in rows if (row.params or {}).get("pat_id") == pat_id]


def _journaled(action: str, pat_id: int) -> list[AuditEvent]:
    """Events the middleware writes once the answer has gone (refusals): they may take a moment."""
    deadline = time.monotonic() + 10
    while not (events := _events(action, pat_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return events


def _studies(server_url: str, headers: dict[str, str]) -> set[str]:
    reply = httpx.get(f"{server_url}/dicom-web/studies", headers=headers, timeout=60)
    assert reply.status_code == 200, reply.text
    return {item["0020000D"]["Value"][0] for item in reply.json()}


def test_a_token_is_shown_once_listed_without_it_and_stored_as_its_hash(server_url: str, cohorts: Cohorts) -> None:
    headers = cohorts.alpha_member.headers(server_url)
    created = _create(server_url, headers, name="nightly radiomics")
    token = created["token"]
    assert token.startswith("awpat_") and len(token) > 40
    listed = httpx.get(f"{server_url}/api/users/me/tokens", headers=headers).json()
    mine = next(item for item in listed if item["id"] == created["id"])
    assert mine["name"] == "nightly radiomics" and mine["state"] == "active" and mine["last_used_at"] is None
    assert token not in httpx.get(f"{server_url}/api/users/me/tokens", headers=headers).text
    with session_scope() as session:
        record = session.get(PersonalAccessToken, created["id"])
        assert record is not None
        assert record.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in {str(value) for value in vars(record).values()}
    # Used once: the listing shows when and from where.
    assert httpx.get(f"{server_url}/api/users/me", headers=_bearer(token)).json()["username"] == "alpha.member"
    listed = httpx.get(f"{server_url}/api/users/me/tokens", headers=headers).json()
    used = next(item for item in listed if item["id"] == created["id"])
    assert used["last_used_at"] is not None and used["last_used_from"] == "127.0.0.1"


def _aged_access_token(username: str, age_s: int) -> str:
    """An access token issued ``age_s`` seconds ago with the server's lifetime (as a login then would have)."""
    settings = get_settings()
    with session_scope() as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None
        key = identity.signing_key(session, settings)
        issued = security.time.time() - age_s
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(security.time, "time", lambda: issued)
            token, _ = security.issue_access_token(
                key,
                settings.jwt_issuer,
                user.username,
                user.id,
                user.token_version,
                timedelta(seconds=settings.access_token_ttl_s),
            )
        return token


def test_a_script_with_a_token_works_past_the_access_token_lifetime(
    server_url: str, cohorts: Cohorts, data: Data, tmp_path: Path
) -> None:
    """MONAI Label's own client never refreshes: with a login's access token it gets 401 once the token is older
    than its lifetime; with a personal access token of that age it goes on (info, next sample, inference)."""
    member = cohorts.alpha_member
    ttl = get_settings().access_token_ttl_s
    assert ttl == 900  # the server's lifetime, which this test outlives
    created = _create(server_url, member.headers(server_url), name="long script")
    with session_scope() as session:  # the token is as old as an access token past its lifetime
        record = session.get(PersonalAccessToken, created["id"])
        assert record is not None
        record.created_at = datetime.now(UTC) - timedelta(seconds=ttl + 60)

    stale = MONAILabelClient(server_url, tmpdir=str(tmp_path))
    stale.update_auth({"token_type": "Bearer", "access_token": _aged_access_token(member.username, ttl + 60)})
    with pytest.raises(MONAILabelClientException) as refused:
        stale.info()
    assert refused.value.status_code == 401

    script = MONAILabelClient(server_url, tmpdir=str(tmp_path))
    script.update_auth({"token_type": "Bearer", "access_token": created["token"]})
    assert "everything_mr" in script.info()["models"]
    sample = script.next_sample("random", {})
    assert sample["id"]  # one of alpha's series
    label_file, _ = script.infer("everything_mr", data.alpha.patient.series_uid, {})
    assert Path(label_file).stat().st_size > 0


def test_a_read_only_token_reads_and_samples_but_never_writes(server_url: str, cohorts: Cohorts, data: Data) -> None:
    created = _create(server_url, cohorts.alpha_member.headers(server_url), name="reader", read_only=True)
    headers = _bearer(created["token"])
    series = data.alpha.patient
    saved = httpx.put(
        f"{server_url}/datastore/label",
        params={"image": series.series_uid, "tag": "final"},
        files={"label": ("label.nii.gz", b"not read", "application/octet-stream")},
        headers=headers,
    )
    assert saved.status_code == 403 and "read-only" in saved.json()["detail"]
    inferred = httpx.post(
        f"{server_url}/infer/everything_mr", params={"image": series.series_uid, "output": "json"}, headers=headers
    )
    assert inferred.status_code == 403 and "read-only" in inferred.json()["detail"]
    metadata = httpx.get(
        f"{server_url}/dicom-web/studies/{series.study_uid}/series/{series.series_uid}/metadata", headers=headers
    )
    assert metadata.status_code == 200 and len(metadata.json()) == len(data.alpha.datasets)
    sample = httpx.post(f"{server_url}/activelearning/random", json={}, headers=headers, timeout=60)
    assert sample.status_code == 200, sample.text
    refusals = _journaled("inference", created["id"])
    assert refusals and refusals[-1].outcome == "denied"  # the refusal names the token too


def test_a_cohort_token_sees_only_that_cohort(server_url: str, admin: Account, cohorts: Cohorts, data: Data) -> None:
    both = create_account("pat.both")
    _join(server_url, admin, cohorts.alpha, both.username)
    _join(server_url, admin, cohorts.beta, both.username)
    login = both.headers(server_url)
    assert {data.alpha.patient.study_uid, data.beta.patient.study_uid} <= _studies(server_url, login)
    created = _create(server_url, login, name="alpha only", cohort=cohorts.alpha)
    headers = _bearer(created["token"])
    seen = _studies(server_url, headers)
    assert data.alpha.patient.study_uid in seen and data.beta.patient.study_uid not in seen
    beta = data.beta.patient
    outside = httpx.get(f"{server_url}/datastore/image/info", params={"image": beta.series_uid}, headers=headers)
    assert outside.status_code == 404
    cohorts_listed = httpx.get(f"{server_url}/api/cohorts", headers=headers).json()
    assert [cohort["id"] for cohort in cohorts_listed] == [cohorts.alpha]
    me = httpx.get(f"{server_url}/api/users/me", headers=headers).json()
    assert [(cohort["id"], cohort["role"]) for cohort in me["cohorts"]] == [(cohorts.alpha, "member")]
    # A cohort the user is not in: refused at creation.
    stranger = httpx.post(
        f"{server_url}/api/users/me/tokens",
        json={"name": "x", "expires_in_days": 1, "cohort": cohorts.beta},
        headers=cohorts.alpha_member.headers(server_url),
    )
    assert stranger.status_code == 404


def test_a_platform_admins_cohort_token_is_no_platform_admin(server_url: str, admin: Account, cohorts: Cohorts) -> None:
    created = _create(server_url, admin.headers(server_url), name="alpha chores", cohort=cohorts.alpha)
    headers = _bearer(created["token"])
    assert httpx.get(f"{server_url}/api/users", headers=headers).status_code == 403
    assert httpx.get(f"{server_url}/api/cohorts/{cohorts.alpha}/members", headers=headers).status_code == 200
    assert httpx.get(f"{server_url}/api/cohorts/{cohorts.beta}/members", headers=headers).status_code in (403, 404)


def test_a_token_cannot_manage_tokens_or_change_the_password(server_url: str, admin: Account, cohorts: Cohorts) -> None:
    member = cohorts.alpha_member
    headers = _bearer(_create(server_url, member.headers(server_url), name="scripts")["token"])
    attempts = [
        httpx.post(f"{server_url}/api/users/me/tokens", json={"name": "more", "expires_in_days": 1}, headers=headers),
        httpx.get(f"{server_url}/api/users/me/tokens", headers=headers),
        httpx.delete(f"{server_url}/api/users/me/tokens/1", headers=headers),
        httpx.post(
            f"{server_url}/api/users/me/password",
            json={"current_password": member.password, "new_password": "a-new-password-456"},
            headers=headers,
        ),
    ]
    root = _bearer(_create(server_url, admin.headers(server_url), name="root script")["token"])
    attempts.append(httpx.get(f"{server_url}/api/users/{member.username}/tokens", headers=root))
    attempts.append(httpx.delete(f"{server_url}/api/users/{member.username}/tokens/1", headers=root))
    attempts.append(httpx.post(f"{server_url}/api/auth/logout", headers=headers))  # no session to end
    assert [reply.status_code for reply in attempts] == [403] * 7
    assert all("personal access token" in reply.json()["detail"] for reply in attempts)
    assert httpx.get(f"{server_url}/api/users/me", headers=member.headers(server_url)).status_code == 200
    assert httpx.get(f"{server_url}/api/users/me", headers=headers).status_code == 200  # the token still works


def test_lifetimes_are_capped_by_the_setting(server_url: str, cohorts: Cohorts) -> None:
    too_long = get_settings().pat_max_days + 1
    reply = httpx.post(
        f"{server_url}/api/users/me/tokens",
        json={"name": "forever", "expires_in_days": too_long},
        headers=cohorts.alpha_member.headers(server_url),
    )
    assert reply.status_code == 422 and "AWESOMME_PAT_MAX_DAYS" in reply.json()["detail"]


def test_expired_and_revoked_tokens_answer_401(server_url: str, cohorts: Cohorts) -> None:
    headers = cohorts.alpha_member.headers(server_url)
    expiring, revoked = _create(server_url, headers, name="expiring"), _create(server_url, headers, name="revoked")
    with session_scope() as session:
        record = session.get(PersonalAccessToken, expiring["id"])
        assert record is not None
        record.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    reply = httpx.get(f"{server_url}/info/", headers=_bearer(expiring["token"]))
    assert reply.status_code == 401 and "expired" in reply.json()["detail"]
    assert httpx.get(f"{server_url}/info/", headers=_bearer(revoked["token"])).status_code == 200
    gone = httpx.delete(f"{server_url}/api/users/me/tokens/{revoked['id']}", headers=headers)
    assert gone.status_code == 200 and gone.json()["state"] == "revoked"
    reply = httpx.get(f"{server_url}/api/users/me", headers=_bearer(revoked["token"]))
    assert reply.status_code == 401 and "revoked" in reply.json()["detail"]
    # Refused uses are journaled with the token's id and owner.
    for created, target in ((expiring, "/info/"), (revoked, "/api/users/me")):
        (refusal,) = _journaled("access.denied", created["id"])
        assert refusal.actor == "alpha.member" and refusal.target == target and refusal.params["status"] == 401
    # Another user's token is not there to revoke.
    other = httpx.delete(
        f"{server_url}/api/users/me/tokens/{expiring['id']}", headers=cohorts.beta_member.headers(server_url)
    )
    assert other.status_code == 404


def test_disabling_the_user_or_resetting_the_password_revokes_their_tokens(
    server_url: str, admin: Account, cohorts: Cohorts
) -> None:
    for username, action in (("pat.disabled", "disable"), ("pat.reset", "reset-password")):
        person = create_account(username)
        _join(server_url, admin, cohorts.alpha, username)
        created = _create(server_url, person.headers(server_url), name="before")
        assert httpx.get(f"{server_url}/info/", headers=_bearer(created["token"])).status_code == 200
        command = [sys.executable, "-m", "awesomme.cli", "user", action, "--username", username, "--password-stdin"]
        done = subprocess.run(command, input="another-password-789\n", capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        assert httpx.get(f"{server_url}/info/", headers=_bearer(created["token"])).status_code == 401
        listed = httpx.get(f"{server_url}/api/users/{username}/tokens", headers=admin.headers(server_url)).json()
        assert [item["state"] for item in listed] == ["revoked"]
        assert any(created["id"] in (event.params or {}).get("pat_ids", []) for event in _all("pat.revoke"))
    # A user changing their own password ends their tokens too.
    person = create_account("pat.changer")
    _join(server_url, admin, cohorts.alpha, person.username)
    login = person.headers(server_url)
    created = _create(server_url, login, name="before")
    change = {"current_password": person.password, "new_password": "a-new-password-456"}
    assert httpx.post(f"{server_url}/api/users/me/password", json=change, headers=login).status_code == 200
    assert httpx.get(f"{server_url}/info/", headers=_bearer(created["token"])).status_code == 401


def _all(action: str) -> list[AuditEvent]:
    with session_scope() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_platform_admins_list_and_revoke_anyones_tokens(server_url: str, admin: Account, cohorts: Cohorts) -> None:
    created = _create(server_url, cohorts.beta_member.headers(server_url), name="beta script")
    root = admin.headers(server_url)
    listed = httpx.get(f"{server_url}/api/users/{cohorts.beta_member.username}/tokens", headers=root)
    assert listed.status_code == 200 and created["id"] in [item["id"] for item in listed.json()]
    revoked = httpx.delete(
        f"{server_url}/api/users/{cohorts.beta_member.username}/tokens/{created['id']}", headers=root
    )
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    assert httpx.get(f"{server_url}/info/", headers=_bearer(created["token"])).status_code == 401
    assert httpx.get(f"{server_url}/api/users/nobody.here/tokens", headers=root).status_code == 404
    member = cohorts.alpha_member.headers(server_url)
    assert httpx.get(f"{server_url}/api/users/{cohorts.beta_member.username}/tokens", headers=member).status_code == 403


def test_every_change_and_use_is_journaled_with_the_token_id(server_url: str, admin: Account, cohorts: Cohorts) -> None:
    headers = cohorts.alpha_member.headers(server_url)
    created = _create(server_url, headers, name="journaled")
    pat = _bearer(created["token"])
    for _ in range(5):  # a script's loop: one use event per minute, not one per request
        assert httpx.get(f"{server_url}/api/users/me", headers=pat).status_code == 200
    assert httpx.delete(f"{server_url}/api/users/me/tokens/{created['id']}", headers=headers).status_code == 200
    assert [event.outcome for event in _events("pat.create", created["id"])] == ["success"]
    uses = _events("pat.use", created["id"])
    assert 1 <= len(uses) <= 2  # 2 only if the loop ran across a minute's turn
    assert uses[0].actor == "alpha.member" and uses[0].target == f"pat:{created['id']}"
    assert [event.actor for event in _events("pat.revoke", created["id"])] == ["alpha.member"]
    assert httpx.get(f"{server_url}/api/users/me", headers=pat).status_code == 401


def test_the_command_line_creates_lists_and_revokes_tokens(server_url: str, cohorts: Cohorts) -> None:
    def awesomme(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "awesomme.cli", "token", *args], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = awesomme("create", "--username", "beta.member", "--name", "cron job", "--days", "3", "--read-only")
    first, token = out.strip().splitlines()
    token_id = int(first.split()[1])
    reply = httpx.get(f"{server_url}/api/users/me", headers=_bearer(token))
    assert reply.status_code == 200 and reply.json()["username"] == "beta.member"
    assert httpx.post(f"{server_url}/api/scores", json={}, headers=_bearer(token)).status_code == 403  # read-only
    listed = awesomme("list", "--username", "beta.member")
    row = next(line for line in listed.splitlines() if line.startswith(f"{token_id}\t"))
    assert "cron job" in row and "read-only" in row and token not in listed
    awesomme("revoke", str(token_id))
    assert httpx.get(f"{server_url}/api/users/me", headers=_bearer(token)).status_code == 401
    assert [event.actor.startswith("cli:") for event in _events("pat.create", token_id)] == [True]
    assert len(_events("pat.revoke", token_id)) == 1
