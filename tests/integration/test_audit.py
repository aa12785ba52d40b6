"""The audit journal against the real server: what is journaled, who may read it, and the chain check command."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import select, update

from awesomme.core.audit import record
from awesomme.core.db import session_scope
from awesomme.models import AuditEvent
from awesomme.orthanc.client import OrthancClient
from tests.integration.addresses import client_from, loopback_for
from tests.integration.conftest import Account, Cohorts, attach_to_cohort, client_for, create_account, store_patient
from tests.journal_rewrites import restore_journal, rewrite_journal, snapshot_journal, truncate_journal


def _events(server_url: str, admin: Account, **filters: str) -> list[dict]:
    reply = httpx.get(f"{server_url}/api/audit", params=filters, headers=admin.headers(server_url))
    assert reply.status_code == 200, reply.text
    return list(reply.json())


def test_logins_failed_and_successful_are_journaled_without_secrets(server_url: str, admin: Account) -> None:
    account = create_account("journal.subject")
    since = datetime.now(UTC).isoformat()
    wrong = {"grant_type": "password", "username": account.username, "password": "wrong-password-123"}
    assert httpx.post(f"{server_url}/api/auth/token", data=wrong).status_code == 401
    account.token(server_url)
    events = _events(server_url, admin, user=account.username, action="auth.token", since=since)
    assert [event["outcome"] for event in events] == ["denied", "success"]
    assert all(event["source"] == "127.0.0.1" for event in events)
    text = str(events)
    assert "wrong-password-123" not in text and account.password not in text


def test_cohort_membership_and_data_actions_are_journaled(server_url: str, admin: Account, cohorts: Cohorts) -> None:
    since = datetime.now(UTC).isoformat()
    url = f"/api/cohorts/{cohorts.alpha}/members/journal.member"
    create_account("journal.member")
    with client_for(server_url, admin) as root:  # cohort admins add people with invite codes only
        assert root.put(url, json={"role": "member"}).status_code == 200
    with client_for(server_url, cohorts.alpha_admin) as cohort_admin:
        assert cohort_admin.put(url, json={"role": "admin"}).status_code == 200
        assert cohort_admin.delete(f"/api/cohorts/{cohorts.beta}/members/beta.member").status_code == 404
    changes = _events(server_url, admin, cohort=str(cohorts.alpha), action="membership.set", since=since)
    assert sorted((e["actor"], e["target"], e["outcome"]) for e in changes) == [
        ("alpha.admin", "journal.member", "success"),
        (admin.username, "journal.member", "success"),
    ]
    refused = _events(server_url, admin, user="alpha.admin", action="membership.remove", since=since)
    assert [e["outcome"] for e in refused] == ["failure"]
    # Filters combine; until excludes what came after.
    assert _events(server_url, admin, user="alpha.admin", since=since, until=since) == []


def test_monailabel_routes_are_journaled_even_where_no_code_of_ours_runs(server_url: str, admin: Account) -> None:
    since = datetime.now(UTC).isoformat()
    with client_for(server_url, admin) as root:
        root.put("/session/", files={"file": ("x.nii.gz", b"not an image")})
        root.delete("/session/no-such-session")
    actions = {e["action"] for e in _events(server_url, admin, user=admin.username, since=since)}
    assert {"session.create", "session.delete"} <= actions


def test_only_platform_admins_read_the_journal_and_csv_has_the_columns(
    server_url: str, admin: Account, cohorts: Cohorts
) -> None:
    with client_for(server_url, cohorts.alpha_admin) as cohort_admin:
        assert cohort_admin.get("/api/audit").status_code == 403
        assert cohort_admin.get("/api/audit.csv").status_code == 403
    reply = httpx.get(f"{server_url}/api/audit.csv", params={"limit": 3}, headers=admin.headers(server_url))
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert len(rows) == 3 and set(rows[0]) == {
        "id",
        "time",
        "actor",
        "action",
        "outcome",
        "target",
        "cohort",
        "params",
        "source",
        "prev_hash",
        "hash",
    }
    assert (
        httpx.get(
            f"{server_url}/api/audit", params={"since": "yesterday"}, headers=admin.headers(server_url)
        ).status_code
        == 422
    )


def _verify() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "awesomme.cli", "audit", "verify"], capture_output=True, text=True, check=False
    )


def test_verify_names_the_first_edited_event_and_passes_once_restored(server_url: str, admin: Account) -> None:
    admin.token(server_url)  # at least one event
    assert _verify().returncode == 0
    with session_scope() as session:
        event = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).first()
        assert event is not None
        original_actor, event_id = event.actor, event.id
        session.execute(update(AuditEvent).where(AuditEvent.id == event_id).values(actor="mallory"))
    try:
        broken = _verify()
        assert broken.returncode != 0 and f"event {event_id}" in broken.stderr
    finally:
        with session_scope() as session:
            session.execute(update(AuditEvent).where(AuditEvent.id == event_id).values(actor=original_actor))
    assert _verify().returncode == 0


def test_viewing_is_journaled_once_per_user_study_and_hour(
    server_url: str, admin: Account, cohorts: Cohorts, orthanc: OrthancClient, tmp_path: Path
) -> None:
    stored = store_patient(orthanc, "osteosarcoma-mr", 701, tmp_path)
    attach_to_cohort(server_url, admin, cohorts.alpha, studies=[stored.patient.study_uid])
    path = f"/dicom-web/studies/{stored.patient.study_uid}/series/{stored.patient.series_uid}/metadata"
    with client_for(server_url, cohorts.alpha_member) as member:
        assert member.get(path).status_code == 200
        assert member.get(path).status_code == 200
    viewed = [
        e
        for e in _events(server_url, admin, user="alpha.member", action="data.viewed")
        if e["target"] == stored.patient.study_uid
    ]
    assert len(viewed) == 1


def test_refused_reads_are_journaled_once_per_user_target_and_minute(
    server_url: str, admin: Account, cohorts: Cohorts
) -> None:
    # A member of its own: earlier tests' refusals of the shared accounts in the same minute were journaled already.
    reader = create_account("denied.reader")
    reply = httpx.put(
        f"{server_url}/api/cohorts/{cohorts.beta}/members/{reader.username}",
        json={"role": "member"},
        headers=admin.headers(server_url),
    )
    assert reply.status_code == 200, reply.text
    since = datetime.now(UTC).isoformat()
    foreign = "/dicom-web/studies/1.2.826.0.1.3680043.10.999.1/series/1.2.826.0.1.3680043.10.999.2/metadata"
    with client_for(server_url, reader) as member:
        for _ in range(3):  # a viewer retries: one event
            assert member.get(foreign).status_code == 404
        assert member.get("/api/audit").status_code == 403
    address = loopback_for("refused reads")  # anonymous callers count per address: one no other test uses
    with client_from(address, base_url=server_url) as anonymous:
        assert anonymous.get("/api/segmentations", params={"access_token": "stolen"}).status_code == 401
    denied = _events(server_url, admin, action="access.denied", since=since)
    mine = [(e["actor"], e["target"], e["params"]["status"]) for e in denied if e["actor"] == reader.username]
    assert sorted(mine) == [(reader.username, "/api/audit", 403), (reader.username, foreign, 404)]
    anonymous_events = [e for e in denied if e["target"] == "/api/segmentations"]
    assert len(anonymous_events) == 1 and anonymous_events[0]["source"] == address
    assert all(e["outcome"] == "denied" for e in denied) and "stolen" not in str(denied)


def test_a_journal_rewritten_in_the_database_fails_verify(server_url: str, admin: Account) -> None:
    admin.token(server_url)  # events, anchored outside the database as they are written
    assert _verify().returncode == 0
    with session_scope() as session:
        snapshot = snapshot_journal(session)
    last_id = snapshot[1][0]
    assert last_id >= 3
    try:
        with session_scope() as session:
            rewrite_journal(session, removed={2})  # rows removed, every later hash recomputed, the head moved
        removed = _verify()
        assert removed.returncode != 0 and f"event {last_id} is anchored outside the database" in removed.stderr
        with session_scope() as session:
            restore_journal(session, snapshot)
            truncate_journal(session, last_id - 2)  # the newest events dropped, the head moved back
        truncated = _verify()
        assert truncated.returncode != 0 and f"journal ends at {last_id - 2}" in truncated.stderr
    finally:
        with session_scope() as session:
            restore_journal(session, snapshot)
    assert _verify().returncode == 0


def test_the_cohort_filter_finds_events_of_several_cohorts_and_the_csv_streams_every_match(
    server_url: str, admin: Account
) -> None:
    """Events of several cohorts list their ids joined by spaces (commas in older events); a cohort's filter finds
    them and no other cohort's whose id merely contains its digits. The CSV is not cut at the JSON page's cap."""
    bulk = 10_050
    with session_scope() as session:
        record(session, "test.cohorts", target="spaces", cohort="7 71")
        record(session, "test.cohorts", target="commas", cohort="71,7")
        record(session, "test.cohorts", target="alone", cohort="7")
        record(session, "test.cohorts", target="other", cohort="71 17 77")
        for index in range(bulk):
            record(session, "test.bulk", target=str(index))
    targets = {event["target"] for event in _events(server_url, admin, action="test.cohorts", cohort="7")}
    assert targets == {"spaces", "commas", "alone"}
    bad = httpx.get(f"{server_url}/api/audit", params={"cohort": "7%"}, headers=admin.headers(server_url))
    assert bad.status_code == 422
    with httpx.stream(
        "GET", f"{server_url}/api/audit.csv", params={"action": "test.bulk"}, headers=admin.headers(server_url)
    ) as reply:
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
        text = "".join(reply.iter_text())
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(row["target"]) for row in rows] == list(range(bulk))
    assert _verify().returncode == 0  # the chain holds: nothing was rewritten to make the filter work
