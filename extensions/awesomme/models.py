"""Tables of the platform database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AuditEvent",
    "AuditHead",
    "Base",
    "Batch",
    "BatchItem",
    "BrowserSession",
    "Cohort",
    "CohortItem",
    "CohortRole",
    "FailedAttempt",
    "FeatureSet",
    "Invite",
    "Membership",
    "ModelBinding",
    "PersonalAccessToken",
    "Prediction",
    "RadiomicsPreset",
    "RefreshToken",
    "RevokedAccessToken",
    "Score",
    "ScoreKind",
    "ScoreType",
    "Segmentation",
    "SegmentationOrigin",
    "SegmentationReview",
    "SegmentationRole",
    "SigningKey",
    "ThrottleLock",
    "User",
]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class SegmentationRole:
    """A SEG saved as a label (final or imported manual work) trains models; a model's output is a prediction."""

    LABEL = "label"
    PREDICTION = "prediction"


class SegmentationOperation:
    """How a SEG came to be on the platform (``SegmentationOrigin.operation``)."""

    INFERENCE = "inference"
    LABEL = "label"
    IMPORT = "import"
    INTERPOLATION = "interpolation"


class Segmentation(Base):
    __tablename__ = "segmentations"

    seg_series_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    seg_sop_uid: Mapped[str] = mapped_column(String(64))
    source_series_uid: Mapped[str] = mapped_column(String(64))
    study_uid: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    tag: Mapped[str] = mapped_column(String(64))
    # The SEG's Content Creator's Name: the person who drew it (the logged-in user, or an import's declared reader).
    author: Mapped[str | None] = mapped_column(String(128))
    # The account that stored it here (the login, never a client's field); "platform" for the platform's own work.
    created_by: Mapped[str | None] = mapped_column(String(64))
    # The person an import declares drew it (display only, never an account); None for work drawn here.
    reader: Mapped[str | None] = mapped_column(String(128))
    algorithm_type: Mapped[str] = mapped_column(String(16), default="MANUAL")
    model_name: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(String(256))
    # [{"number": 1, "label": "tumour", "volume_ml": 12.3}, ...]
    segments: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The prediction a label corrects (SEMIAUTOMATIC), when there is one.
    derived_from: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    # Derived from demo weights (a demo model's prediction, or a correction or interpolation of one): its SEG's
    # descriptions carry the demo notice, and so does everything derived from it.
    demo_weights: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (Index("ix_segmentations_source", "source_series_uid", "role", "tag"),)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    is_platform_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped when the user is disabled or their password reset: every token issued before stops working.
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class SigningKey(Base):
    """RS256 keys; the newest signs, every one not yet retired past the token lifetime verifies."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    # The login this token descends from (rotation keeps it); None for tokens issued before families existed.
    family: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # Rotated once already: presenting it again is a replay, which ends the family.
    spent: Mapped[bool] = mapped_column(Boolean, default=False)


class RevokedAccessToken(Base):
    """Access tokens ended by a logout before their expiry (kept until then)."""

    __tablename__ = "revoked_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BrowserSession(Base):
    """A browser's login (the HttpOnly cookie holds the secret; only its hash is here)."""

    __tablename__ = "browser_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_version: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class CohortRole:
    ADMIN = "admin"
    MEMBER = "member"
    ALL = (ADMIN, MEMBER)


class Cohort(Base):
    __tablename__ = "cohorts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(1024), default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    # De-identification policy (dicom/deidentify.py): identified cohorts store data as sent; the others apply PS3.15
    # Annex E's Basic Profile with these options before anything reaches Orthanc. Its key is a file, never a column.
    identified: Mapped[bool] = mapped_column(Boolean, default=False)
    deidentification_options: Mapped[list[str]] = mapped_column(JSON, default=list)
    allow_burned_in: Mapped[bool] = mapped_column(Boolean, default=False)


class Membership(Base):
    __tablename__ = "memberships"

    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(16))


class CohortItem(Base):
    """A whole study (``series_uid`` empty) or one series of it, attached to a cohort."""

    __tablename__ = "cohort_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), index=True)
    study_uid: Mapped[str] = mapped_column(String(64), index=True)
    series_uid: Mapped[str] = mapped_column(String(64), default="", index=True)
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    __table_args__ = (UniqueConstraint("cohort_id", "study_uid", "series_uid"),)


class Invite(Base):
    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class ModelBinding(Base):
    """The cohorts a model may run on, set at run time; overrides the ``cohorts`` of the model's YAML."""

    __tablename__ = "model_bindings"

    model_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    cohort_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class AuditEvent(Base):
    """One action of interest; rows are only ever appended (see ``awesomme.core.audit``)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(1024), default="")
    cohort: Mapped[str] = mapped_column(String(256), default="", index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(64), default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's newest id and hash, kept outside the journal: deleting its newest rows shows."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_id: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


# -- reviews of segmentations (migration 0006) --------------------------------------------------------------------


class SegmentationReview(Base):
    """A reviewer's decision on a SEG (accepted or rejected, with a comment); every decision is kept."""

    __tablename__ = "segmentation_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seg_series_uid: Mapped[str] = mapped_column(String(64), index=True)
    reviewer: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(String(2048), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class SegmentationOrigin(Base):
    """Who made a SEG on the platform and how (an import of which file, an interpolation): its owner may delete it."""

    __tablename__ = "segmentation_origins"

    seg_series_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_by: Mapped[str] = mapped_column(String(64), index=True)
    operation: Mapped[str] = mapped_column(String(16))  # a SegmentationOperation
    source_format: Mapped[str | None] = mapped_column(String(16))
    source_name: Mapped[str | None] = mapped_column(String(256))
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


# -- radiomics: presets and feature sets (migration 0007) ---------------------------------------------------------


class RadiomicsPreset(Base):
    """A named, versioned PyRadiomics parameter set; never edited in place (a change is a new version)."""

    __tablename__ = "radiomics_presets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    # None: built-in or platform-wide; otherwise the cohort whose admins defined it.
    cohort_id: Mapped[int | None] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), nullable=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    __table_args__ = (UniqueConstraint("name", "version"),)


class FeatureSet(Base):
    """Radiomics features of one segment of a SEG on its source series, with their provenance."""

    __tablename__ = "feature_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_uid: Mapped[str] = mapped_column(String(64))
    series_uid: Mapped[str] = mapped_column(String(64), index=True)
    seg_uid: Mapped[str] = mapped_column(String(64))
    segment_number: Mapped[int] = mapped_column(Integer)
    # "<name>@<version>" of a preset, or "custom" for parameters given in the request.
    preset: Mapped[str] = mapped_column(String(128))
    tag: Mapped[str] = mapped_column(String(128), default="")
    features: Mapped[dict[str, float]] = mapped_column(JSON)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


# -- predictions of classification models (migration 0008) --------------------------------------------------------


class Prediction(Base):
    """A classification model's answer for one feature set (or an uploaded CSV row), with its provenance.

    It belongs to its series' cohorts; a prediction from an uploaded CSV belongs to the cohort named with it.
    """

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_uid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    series_uid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    feature_set_id: Mapped[int | None] = mapped_column(
        ForeignKey("feature_sets.id", ondelete="SET NULL"), nullable=True
    )
    cohort_id: Mapped[int | None] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), nullable=True)
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(128))
    probabilities: Mapped[dict[str, float]] = mapped_column(JSON)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


# -- score types and scores (migration 0009) ----------------------------------------------------------------------


class ScoreKind:
    """How a score type's values are compared: ordered categories, unordered ones, numbers, or free text."""

    ORDINAL = "ordinal"
    NOMINAL = "nominal"
    NUMERIC = "numeric"
    TEXT = "text"
    ALL = (ORDINAL, NOMINAL, NUMERIC, TEXT)


class ScoreType(Base):
    """A kind of expert judgement: built in (``mrs``, ``free_text``, ``numeric``), platform-wide or a cohort's own."""

    __tablename__ = "score_types"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(16))
    # Categories (ordinal, nominal): {"0": "No symptoms", ...}, ordered as listed.
    labels: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    minimum: Mapped[float | None] = mapped_column(Float, nullable=True)
    maximum: Mapped[float | None] = mapped_column(Float, nullable=True)
    # None: built in or platform-wide; otherwise the cohort whose admins defined it.
    cohort_id: Mapped[int | None] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), nullable=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)

    __table_args__ = (UniqueConstraint("key", "cohort_id"),)


class Score(Base):
    """One rater's judgement of a study, series or derived object; it belongs to the cohorts of its series."""

    __tablename__ = "scores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_uid: Mapped[str] = mapped_column(String(64), index=True)
    target_kind: Mapped[str] = mapped_column(String(16))
    # Resolved from the target when scored: what cohort filtering goes by (series empty for a whole study).
    study_uid: Mapped[str] = mapped_column(String(64))
    series_uid: Mapped[str] = mapped_column(String(64), default="", index=True)
    # The cohort of a cohort-defined score type; None for built-in and platform-wide types.
    cohort_id: Mapped[int | None] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), nullable=True)
    score_type_id: Mapped[int] = mapped_column(ForeignKey("score_types.id", ondelete="CASCADE"), index=True)
    value: Mapped[Any] = mapped_column(JSON)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    rater: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


# -- failed password and invite-code attempts (migration 0011) -----------------------------------------------------


class FailedAttempt(Base):
    """One failed (or still being evaluated) attempt: see ``awesomme.services.throttle``."""

    __tablename__ = "failed_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(128), default="")
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float, index=True)

    __table_args__ = (
        Index("ix_failed_attempts_subject", "scope", "subject", "at"),
        Index("ix_failed_attempts_address", "scope", "address", "at"),
    )


class ThrottleLock(Base):
    """One row that a reservation updates first: throttle counts and inserts queue behind it."""

    __tablename__ = "throttle_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    taken: Mapped[int] = mapped_column(Integer, default=0)


# -- personal access tokens (migration 0013) -----------------------------------------------------------------------


class PersonalAccessToken(Base):
    """A long-lived bearer token for scripts: named, expiring, stored as a hash, optionally read-only or limited
    to one cohort; ``token_version`` is the user's when it was made (a password reset or a suspension ends it)."""

    __tablename__ = "personal_access_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # A cohort token: deleting the cohort deletes the token (it must never widen to the user's other cohorts).
    cohort_id: Mapped[int | None] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), nullable=True)
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    token_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_from: Mapped[str | None] = mapped_column(String(64), nullable=True)


class SampleGrant(Base):
    """One download of one series, without credentials, for the user an active learning answer gave it to, from
    the address that asked: 3D Slicer's module fetches its sample with ``urlretrieve``, which sends no token.
    Used at most once (``used_at``), before ``expires_at``."""

    __tablename__ = "sample_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    series_uid: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# -- import jobs (migration 0015) ----------------------------------------------------------------------------------


class ImportJob(Base):
    """One import of DICOM or legacy NIfTI files into a cohort: its state and its report (``items``: one per stored
    series, one per refused file). Never a patient's identity: the identity map lives encrypted under ``var/``."""

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # dicom | nifti
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done | failed
    files: Mapped[int] = mapped_column(Integer, default=0)
    done_files: Mapped[int] = mapped_column(Integer, default=0)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    mapping_state: Mapped[str] = mapped_column(String(16), default="none")  # none | ready | taken | expired


# -- cohort batches (migration 0017) -------------------------------------------------------------------------------


class Batch(Base):
    """A cohort batch: one kind of work (segmentation, radiomics, classification) over the series a selection
    chose. ``spec`` holds the request (model or preset, seg choice, selection); its items hold each series' state."""

    __tablename__ = "batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # segmentation | radiomics | classification
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    description: Mapped[str] = mapped_column(String(256), default="")
    tag: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | running | done | cancelled
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class BatchItem(Base):
    """One series of a batch: ``item_key`` is the series UID; ``output`` what was stored for it (a SEG's series UID,
    a feature set's id), derived from the batch and the item so that a re-run finds it instead of storing twice."""

    __tablename__ = "batch_items"
    __table_args__ = (UniqueConstraint("batch_id", "item_key", name="uq_batch_items_batch_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    item_key: Mapped[str] = mapped_column(String(64))
    study_uid: Mapped[str] = mapped_column(String(64))
    patient: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | running | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # e.g. the SEG a radiomics item reads
    output: Mapped[str] = mapped_column(String(64), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


# -- hospital PACS peers (migration 0019) ------------------------------------------------------------------------


class PacsPeer(Base):
    """A DICOM peer (a hospital PACS) the platform may query (C-FIND) and retrieve from (C-GET): the cohorts whose
    admins may use it (``cohorts``: ids) and the most studies and instances one request may bring."""

    __tablename__ = "pacs_peers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    ae_title: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    retrieve: Mapped[str] = mapped_column(String(8), default="get")  # get | move
    move_port: Mapped[int | None] = mapped_column(Integer, nullable=True)  # move: our storage SCP's port, per job
    cohorts: Mapped[list[int]] = mapped_column(JSON, default=list)
    max_studies: Mapped[int] = mapped_column(Integer, default=10)
    max_instances: Mapped[int] = mapped_column(Integer, default=2000)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
