"""The journal's anchor outside the database: a rewrite that keeps the chain consistent still fails ``verify``.

Each test runs a platform of its own (var directory and database: SQLite, then PostgreSQL), so the anchor written
is the one ``awesomme audit verify`` reads.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from awesomme.core import audit
from awesomme.core.config import get_settings
from awesomme.core.db import forget_engine, migrate, session_scope
from awesomme.models import AuditHead
from tests.journal_rewrites import rewrite_journal, truncate_journal


@pytest.fixture()
def anchor(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[audit.Anchor]:
    """A platform with five journaled events, each in a transaction of its own; its anchor."""

    for name in [name for name in os.environ if name.startswith("AWESOMME_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWESOMME_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("AWESOMME_DATABASE_URL", db_url)
    forget_engine()
    migrate()
    for number in range(1, 6):
        with session_scope() as session:
            audit.record(session, "inference", target=f"1.2.{number}", actor="alice")
    try:
        yield audit.Anchor.of(get_settings())
    finally:
        forget_engine()


def _verify(anchor: audit.Anchor | None) -> audit.Verdict:
    with session_scope() as session:
        return audit.verify(session, anchor)


def test_every_committed_append_is_anchored_in_an_owner_only_file(anchor: audit.Anchor) -> None:
    assert anchor.path.read_text().count("\n") == 5
    assert stat.S_IMODE(anchor.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(anchor.path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((anchor.path.parent / "anchor.key").stat().st_mode) == 0o600
    verdict = _verify(anchor)
    assert verdict.ok and verdict.events == 5 and verdict.anchored_id == 5


def test_rows_removed_and_hashes_recomputed_fail_verify(anchor: audit.Anchor) -> None:
    with session_scope() as session:
        rewrite_journal(session, removed={3})  # the chain rebuilt over the rest
    assert _verify(None).ok  # the chain alone cannot see it
    verdict = _verify(anchor)
    assert not verdict.ok and verdict.first_bad_id == 5 and "anchored outside the database" in verdict.problem


def test_a_removed_row_replaced_by_a_forged_one_fails_verify(anchor: audit.Anchor) -> None:
    with session_scope() as session:
        rewrite_journal(session, removed={3})
        audit.record(session, "inference", target="1.2.6", actor="mallory")  # back to five events
    verdict = _verify(anchor)
    assert not verdict.ok and "rewritten" in verdict.problem


def test_a_truncated_tail_with_a_moved_head_fails_verify(anchor: audit.Anchor) -> None:
    with session_scope() as session:
        truncate_journal(session, last_id=3)
    assert _verify(None).ok
    verdict = _verify(anchor)
    assert not verdict.ok and verdict.first_bad_id == 4 and "journal ends at 3" in verdict.problem


def test_an_anchor_line_not_signed_with_the_key_fails_verify(anchor: audit.Anchor) -> None:
    with session_scope() as session:
        head = session.get(AuditHead, 1)
        assert head is not None
        line = f"{head.last_id} {head.last_hash} {'0' * 64}\n"
    with anchor.path.open("a") as file:
        file.write(line)
    verdict = _verify(anchor)
    assert not verdict.ok and "line 6" in verdict.problem and "not signed" in verdict.problem


def test_a_rolled_back_append_is_not_anchored(anchor: audit.Anchor) -> None:
    with pytest.raises(RuntimeError), session_scope() as session:
        audit.record(session, "inference", target="1.2.99")
        raise RuntimeError("the action failed")
    assert anchor.path.read_text().count("\n") == 5
    assert _verify(anchor).ok


def test_a_journal_with_events_but_no_anchor_fails_verify(anchor: audit.Anchor) -> None:
    anchor.path.unlink()
    verdict = _verify(anchor)
    assert not verdict.ok and "anchors none" in verdict.problem


def test_another_database_never_writes_the_platform_anchor(anchor: audit.Anchor, tmp_path: Path) -> None:
    from awesomme.core.db import engine_for

    other = f"sqlite:///{tmp_path / 'other.db'}"
    migrate(other)
    with Session(engine_for(other)) as session:
        audit.record(session, "inference", target="elsewhere")
        session.commit()
    assert anchor.path.read_text().count("\n") == 5
