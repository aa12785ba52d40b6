"""Alembic migrations on SQLite and PostgreSQL: from empty to head, and an upgrade that keeps every existing row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, select, update
from sqlalchemy.orm import Session

from awesomme.core import audit
from awesomme.core.db import alembic_config, engine_for
from awesomme.models import Base, Cohort, User

CREATED = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
EXPIRES = CREATED + timedelta(days=7)

# Rows for every table of the revision before head, inserted in this order (foreign keys); integer ids are left to
# the database, so that its sequences stay right. Values a backend could mangle: microseconds, time zones,
# non-ASCII text, JSON, booleans, NULLs, an empty string in a key.
SAMPLE_ROWS: dict[str, list[dict[str, Any]]] = {
    "users": [
        {
            "username": "alice",
            "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
            "is_platform_admin": True,
            "is_active": True,
            "token_version": 3,
            "created_at": CREATED,
        },
        {
            "username": "bérénice",
            "password_hash": "x" * 256,
            "is_platform_admin": False,
            "is_active": False,
            "token_version": 0,
            "created_at": CREATED + timedelta(microseconds=1),
        },
    ],
    "signing_keys": [
        {
            "kid": "2026-01-02",
            "private_pem": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
            "public_jwk": {"kty": "RSA", "kid": "2026-01-02", "n": "0vx7", "e": "AQAB", "use": "sig"},
            "created_at": CREATED,
        }
    ],
    "refresh_tokens": [{"token_hash": "a" * 64, "user_id": 1, "expires_at": EXPIRES, "revoked": False}],
    "revoked_access_tokens": [{"jti": "j" * 32, "expires_at": EXPIRES}],
    "browser_sessions": [
        {"token_hash": "b" * 64, "user_id": 2, "token_version": 0, "expires_at": EXPIRES, "revoked": True}
    ],
    "cohorts": [
        {"name": "alpha", "description": "Ostéosarcome, 12 patients", "created_by": "alice", "created_at": CREATED},
        {"name": "beta", "description": "", "created_by": "alice", "created_at": CREATED},
    ],
    "memberships": [
        {"cohort_id": 1, "user_id": 1, "role": "admin"},
        {"cohort_id": 1, "user_id": 2, "role": "member"},
        {"cohort_id": 2, "user_id": 2, "role": "admin"},
    ],
    "cohort_items": [
        {"cohort_id": 1, "study_uid": "1.2.826.0.1.1", "series_uid": "", "added_by": "alice", "added_at": CREATED},
        {
            "cohort_id": 2,
            "study_uid": "1.2.826.0.1.1",
            "series_uid": "1.2.826.0.1.1.2",
            "added_by": "alice",
            "added_at": CREATED,
        },
    ],
    "invites": [
        {
            "code_hash": "c" * 64,
            "cohort_id": 1,
            "role": "member",
            "max_uses": 5,
            "uses": 2,
            "expires_at": EXPIRES,
            "revoked": False,
            "created_by": "alice",
            "created_at": CREATED,
        }
    ],
    "model_bindings": [
        {"model_name": "osteosarcoma_mr", "cohort_ids": [1, 2], "updated_by": "alice", "updated_at": CREATED}
    ],
    "segmentations": [
        {
            "seg_series_uid": "1.2.826.0.1.1.9",
            "seg_sop_uid": "1.2.826.0.1.1.9.1",
            "source_series_uid": "1.2.826.0.1.1.2",
            "study_uid": "1.2.826.0.1.1",
            "role": "label",
            "tag": "final",
            "author": "alice",
            "created_at": CREATED,
            "algorithm_type": "AUTOMATIC",
            "model_name": "osteosarcoma_mr",
            "model_version": "0.1.0",
            "description": "tumeur, fémur gauche",
            "segments": [{"number": 1, "label": "tumour", "code": {"value": "108369006", "scheme": "SCT"}}],
            "derived_from": None,
        }
    ],
    "audit_events": [
        {
            "id": 1,
            "time": CREATED,
            "actor": "alice",
            "action": "inference",
            "outcome": "success",
            "target": "1.2.826.0.1.3680043.8.498.2",
            "cohort": "osteosarcoma",
            "params": {"model": "osteosarcoma_mr"},
            "source": "127.0.0.1",
            "prev_hash": audit.GENESIS,
        }
    ],
}
SAMPLE_ROWS["radiomics_presets"] = [
    {
        "name": "ibsi-original",
        "version": 1,
        "parameters": {"setting": {"binWidth": 25, "preCrop": True}, "imageType": {"Original": {}}},
        "cohort_id": None,
        "created_by": "alice",
        "created_at": CREATED,
    },
    {
        "name": "fémur-mr",
        "version": 2,
        "parameters": {"setting": {"binWidth": 5.0}, "imageType": {"LoG": {"sigma": [1.0, 2.0]}}},
        "cohort_id": 1,
        "created_by": "bérénice",
        "created_at": CREATED,
    },
]
SAMPLE_ROWS["feature_sets"] = [
    {
        "study_uid": "1.2.826.0.1.1",
        "series_uid": "1.2.826.0.1.1.2",
        "seg_uid": "1.2.826.0.1.1.9",
        "segment_number": 1,
        "preset": "ibsi-original@1",
        "tag": "baseline",
        "features": {"original_firstorder_Mean": 12.5, "original_shape_MeshVolume": 1234.0625},
        "provenance": {"user": "alice", "versions": {"pyradiomics-bhklab": "3.1.4"}, "tag": "baseline"},
        "created_by": "alice",
        "created_at": CREATED,
    }
]
SAMPLE_ROWS["predictions"] = [
    {
        "study_uid": "1.2.826.0.1.1",
        "series_uid": "1.2.826.0.1.1.2",
        "feature_set_id": 1,
        "cohort_id": None,
        "model_name": "osteosarcoma_response",
        "model_version": "0.1.0",
        "label": "good",
        "probabilities": {"good": 0.625, "poor": 0.375},
        "provenance": {"user": "alice", "preset": "osteosarcoma-mr@1", "demo": True},
        "created_by": "alice",
        "created_at": CREATED,
    },
    {
        "study_uid": None,
        "series_uid": None,
        "feature_set_id": None,
        "cohort_id": 2,
        "model_name": "osteosarcoma_response",
        "model_version": "0.1.0",
        "label": "poor",
        "probabilities": {"good": 0.25, "poor": 0.75},
        "provenance": {"input": "uploaded CSV", "user": "bérénice"},
        "created_by": "bérénice",
        "created_at": CREATED,
    },
]
SAMPLE_ROWS["segmentation_reviews"] = [
    {
        "seg_series_uid": "1.2.826.0.1.1.9",
        "reviewer": "bérénice",
        "status": "rejected",
        "comment": "bord postérieur à revoir",
        "created_at": CREATED,
    }
]
SAMPLE_ROWS["segmentation_origins"] = [
    {
        "seg_series_uid": "1.2.826.0.1.1.9",
        "created_by": "alice",
        "operation": "import",
        "source_format": "nifti",
        "source_name": "tumeur.nii.gz",
        "source_sha256": "d" * 64,
        "created_at": CREATED,
    }
]
SAMPLE_ROWS["score_types"] = [
    {
        "key": "réponse-huvos",
        "name": "Huvos grade",
        "kind": "ordinal",
        "labels": {"I": "little or no necrosis", "IV": "no viable tumour"},
        "minimum": None,
        "maximum": None,
        "cohort_id": 1,
        "created_by": "alice",
        "created_at": CREATED,
    }
]
SAMPLE_ROWS["scores"] = [
    {
        "target_uid": "1.2.826.0.1.1.2",
        "target_kind": "series",
        "study_uid": "1.2.826.0.1.1",
        "series_uid": "1.2.826.0.1.1.2",
        "cohort_id": None,
        "score_type_id": 1,
        "value": 3,
        "confidence": 0.75,
        "comment": "mRS à 3 mois",
        "rater": "bérénice",
        "created_at": CREATED,
    }
]
SAMPLE_ROWS["failed_attempts"] = [
    {"scope": "login", "subject": "bérénice", "address": "192.0.2.7", "at": 1767323045.123456},
    {"scope": "invite", "subject": "", "address": "2001:db8::7", "at": 1767323046.5},
]
SAMPLE_ROWS["personal_access_tokens"] = [
    {
        "user_id": 1,
        "name": "nightly script",
        "token_hash": "p" * 64,
        "cohort_id": 1,
        "read_only": True,
        "token_version": 3,
        "created_at": CREATED,
        "expires_at": EXPIRES,
        "revoked_at": None,
        "last_used_at": None,
        "last_used_from": None,
    }
]
# The journal's first event, chained as the platform writes it (its head row is the migration's: see _insert_samples).
SAMPLE_ROWS["sample_grants"] = [
    {
        "user_id": 2,
        "series_uid": "1.2.826.0.1.2",
        "address": "2001:db8::1",
        "created_at": CREATED,
        "expires_at": EXPIRES,
        "used_at": None,
    }
]
SAMPLE_ROWS["import_jobs"] = [
    {
        "user_id": 1,
        "cohort_id": 1,
        "kind": "nifti",
        "status": "done",
        "files": 2,
        "done_files": 2,
        "items": [{"file": "knee é.nii.gz", "series_uid": "1.2.3", "status": "stored"}],
        "error": "",
        "created_at": CREATED,
        "finished_at": EXPIRES,
        "mapping_state": "taken",
    }
]
SAMPLE_ROWS["batches"] = [
    {
        "cohort_id": 1,
        "kind": "segmentation",
        "spec": {"model": "osteosarcoma_mr", "selection": {"modality": "MR", "description": "^T1 ?é"}},
        "description": "pre-op réponse",
        "tag": "run-1",
        "status": "running",
        "created_by": "alice",
        "created_at": CREATED,
        "started_at": CREATED,
        "finished_at": None,
    }
]
SAMPLE_ROWS["batch_items"] = [
    {
        "batch_id": 1,
        "item_key": "1.2.826.0.1.2",
        "study_uid": "1.2.826.0.1",
        "patient": "P-0001",
        "status": "failed",
        "attempts": 2,
        "inputs": {"series_uid": "1.2.826.0.1.2"},
        "output": "",
        "error": "series 1.2.826.0.1.2 is CT; the model runs on MR",
        "duration_s": 1.5,
        "updated_at": EXPIRES,
    }
]
SAMPLE_ROWS["audit_events"][0]["hash"] = audit._digest(SimpleNamespace(**SAMPLE_ROWS["audit_events"][0]))


def _head_and_previous(url: str) -> tuple[str, str]:
    script = ScriptDirectory.from_config(alembic_config(url))
    head = script.get_current_head()
    assert head is not None
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str), "the migrations must form one line"
    return head, previous


def _insert_samples(connection: Connection) -> None:
    metadata = MetaData()
    metadata.reflect(connection)
    for name, rows in SAMPLE_ROWS.items():
        if name in metadata.tables:  # the newest migration's tables do not exist yet at the previous revision
            connection.execute(metadata.tables[name].insert(), rows)
    last = SAMPLE_ROWS["audit_events"][-1]
    connection.execute(update(metadata.tables["audit_head"]).values(last_id=last["id"], last_hash=last["hash"]))


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _normal(value: Any) -> Any:
    """SQLite hands back naive datetimes (stored in UTC), PostgreSQL aware ones in the session's zone."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _snapshot(connection: Connection, tables: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Every row of ``tables``, read through the schema the database has now, in primary-key order."""
    metadata = MetaData()
    metadata.reflect(connection, only=sorted(tables))
    snapshot = {}
    for name in sorted(tables):
        table = metadata.tables[name]
        rows = connection.execute(select(table).order_by(*table.primary_key.columns)).mappings()
        snapshot[name] = [{key: _normal(value) for key, value in row.items()} for row in rows]
    return snapshot


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_from_empty_to_head_gives_the_models_schema(db_url: str) -> None:
    engine = engine_for(db_url)
    head, _ = _head_and_previous(db_url)
    assert _tables(engine) == set() and _revision(engine) is None
    command.upgrade(alembic_config(db_url), "head")
    assert _revision(engine) == head
    assert _tables(engine) == set(Base.metadata.tables)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []  # types, columns, indexes, constraints
    command.upgrade(alembic_config(db_url), "head")  # a second start finds nothing to do
    assert _revision(engine) == head
    engine.dispose()


def test_upgrading_from_the_previous_revision_keeps_every_row(db_url: str) -> None:
    engine = engine_for(db_url)
    config = alembic_config(db_url)
    head, previous = _head_and_previous(db_url)
    command.upgrade(config, previous)
    existing = _tables(engine)
    missing = existing - set(SAMPLE_ROWS)
    with engine.begin() as connection:
        _insert_samples(connection)
        before = _snapshot(connection, existing)
    assert not [name for name in missing if not before[name]], f"add sample rows for the tables {sorted(missing)}"
    for name, rows in SAMPLE_ROWS.items():  # what went in is what a read gives back, before any upgrade
        if name not in existing:
            continue
        read = [{key: row[key] for key in rows[0]} for row in before[name]]
        assert [row for row in read if row in rows] == rows, name  # beside any rows the migrations seeded

    command.upgrade(config, "head")
    assert _revision(engine) == head
    with engine.connect() as connection:
        after = _snapshot(connection, existing)
    # Columns the upgrade added are left out: every row keeps every value it had.
    assert {
        name: [{key: row[key] for key in old} for row, old in zip(after[name], before[name], strict=True)]
        for name in existing
    } == before
    # Cohorts that held data before de-identification policies existed keep storing it as sent.
    assert all(row["identified"] for row in after["cohorts"])

    # The upgraded database works: the sequences continue after the old rows, the journal starts its chain.
    with Session(engine) as session:
        cohort = Cohort(name="gamma", created_by="bérénice")
        session.add(cohort)
        session.add(User(username="carol", password_hash="y" * 64))
        session.flush()
        assert cohort.id == 3
        audit.record(session, "cohort.created", target=str(cohort.id), actor="bérénice")
        session.commit()
        assert audit.verify(session).ok
    engine.dispose()


def test_downgrades_go_back_and_forth_without_losing_older_rows(db_url: str) -> None:
    engine = engine_for(db_url)
    config = alembic_config(db_url)
    head, previous = _head_and_previous(db_url)
    command.upgrade(config, previous)
    with engine.begin() as connection:
        _insert_samples(connection)
        before = _snapshot(connection, _tables(engine))
    command.upgrade(config, "head")
    command.downgrade(config, previous)
    assert _revision(engine) == previous
    with engine.connect() as connection:
        assert _snapshot(connection, _tables(engine)) == before
    command.upgrade(config, "head")
    assert _revision(engine) == head

    command.downgrade(config, "base")  # every downgrade runs, down to an empty database
    assert _tables(engine) == set() and _revision(engine) is None
    command.upgrade(config, "head")
    assert _tables(engine) == set(Base.metadata.tables)
    engine.dispose()


def test_refresh_tokens_issued_before_families_survive_0010_unspent_and_without_a_family(db_url: str) -> None:
    engine = engine_for(db_url)
    config = alembic_config(db_url)
    command.upgrade(config, "0009")
    with engine.begin() as connection:
        metadata = MetaData()
        metadata.reflect(connection, only=["users", "refresh_tokens"])
        connection.execute(metadata.tables["users"].insert(), SAMPLE_ROWS["users"][:1])
        connection.execute(metadata.tables["refresh_tokens"].insert(), SAMPLE_ROWS["refresh_tokens"])
    command.upgrade(config, "0010")
    with engine.connect() as connection:
        metadata = MetaData()
        metadata.reflect(connection, only=["refresh_tokens"])
        rows = connection.execute(select(metadata.tables["refresh_tokens"])).mappings().all()
    assert [(row["token_hash"], row["family"], bool(row["spent"]), bool(row["revoked"])) for row in rows] == [
        ("a" * 64, None, False, False)
    ]
    command.downgrade(config, "0009")  # and back
    assert {c["name"] for c in inspect(engine).get_columns("refresh_tokens")} == {
        "token_hash",
        "user_id",
        "expires_at",
        "revoked",
    }
    engine.dispose()


def test_0012_gives_each_seg_its_creator_from_its_origin_else_its_author_and_an_imports_reader(db_url: str) -> None:
    engine = engine_for(db_url)
    config = alembic_config(db_url)
    command.upgrade(config, "0011")
    sample = SAMPLE_ROWS["segmentations"][0]
    rows = [
        {**sample, "seg_series_uid": "1.9.1", "author": "Doe^Jane"},  # imported by alice, drawn by Doe^Jane
        {**sample, "seg_series_uid": "1.9.2", "author": "bob"},  # a label saved by bob (his origin says so)
        {**sample, "seg_series_uid": "1.9.3", "author": "carol"},  # from before origins: its author
        {**sample, "seg_series_uid": "1.9.4", "author": "alice"},  # imported by alice, her own work
    ]
    origin = SAMPLE_ROWS["segmentation_origins"][0]
    origins = [
        {**origin, "seg_series_uid": "1.9.1"},
        {**origin, "seg_series_uid": "1.9.2", "created_by": "bob", "operation": "label"},
        {**origin, "seg_series_uid": "1.9.4"},
    ]
    with engine.begin() as connection:
        metadata = MetaData()
        metadata.reflect(connection, only=["segmentations", "segmentation_origins"])
        connection.execute(metadata.tables["segmentations"].insert(), rows)
        connection.execute(metadata.tables["segmentation_origins"].insert(), origins)
    command.upgrade(config, "0012")
    with engine.connect() as connection:
        metadata = MetaData()
        metadata.reflect(connection, only=["segmentations"])
        table = metadata.tables["segmentations"]
        found = connection.execute(select(table).order_by(table.c.seg_series_uid)).mappings().all()
    assert [(row["created_by"], row["reader"], row["author"]) for row in found] == [
        ("alice", "Doe^Jane", "Doe^Jane"),
        ("bob", None, "bob"),
        ("carol", None, "carol"),
        ("alice", None, "alice"),
    ]
    command.downgrade(config, "0011")  # and back
    assert "created_by" not in {c["name"] for c in inspect(engine).get_columns("segmentations")}
    engine.dispose()
