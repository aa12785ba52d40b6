"""The shapes of our API's JSON answers, as the OpenAPI schema (and ``/docs``) publishes them.

Each model names every field a route answers; values stay as the services build them (ISO 8601 text for times).
Open-ended content (a model's validation figures, PyRadiomics parameters, features by name, provenance) is a JSON
object of its own, typed ``dict[str, Any]``.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response
from pydantic import BaseModel, Field

__all__ = [
    "Account",
    "AgreementAuthor",
    "AttachedItem",
    "Attachment",
    "AuditEventOut",
    "AuthEnabled",
    "BatchCounts",
    "BatchCreated",
    "BatchDryRun",
    "BatchItemOut",
    "BatchPatientPlan",
    "BatchStatus",
    "BrowserSession",
    "ClassificationModel",
    "CohenKappa",
    "CohortRef",
    "CohortView",
    "CohortWithRole",
    "CsvResponse",
    "DeidentificationPolicyIn",
    "DeidentificationPolicyOut",
    "Deleted",
    "ErrorBody",
    "FeatureSet",
    "FeatureSetSummary",
    "Grant",
    "Health",
    "InvalidBody",
    "Invite",
    "InviteWithCode",
    "Jwks",
    "Me",
    "Member",
    "ModelBinding",
    "Prediction",
    "Preset",
    "Registered",
    "Removed",
    "Review",
    "Score",
    "ScoreAgreement",
    "ScoreList",
    "ScoreSummary",
    "ScoreType",
    "SegmentPairAgreement",
    "SegmentationAgreement",
    "SegmentationImported",
    "SegmentationInterpolated",
    "SegmentationListing",
    "SegmentationModel",
    "StatusMessage",
    "TokenOwner",
    "Tokens",
    "errors",
    "text_errors",
]


class ErrorBody(BaseModel):
    """Every 4xx (and 503) the platform sends: a reason a person can read."""

    detail: str


class InvalidBody(BaseModel):
    """A 422: a reason (the platform's own checks), or FastAPI's list of ``{type, loc, msg, input, ctx}``."""

    detail: str | list[dict[str, Any]]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the error statuses a route sends, each with its body (``ErrorBody``; a 422's may list)."""
    return {code: {"model": InvalidBody if code == 422 else ErrorBody} for code in codes}


def text_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``errors`` for a route that answers CSV or HTML: its errors are JSON all the same (FastAPI would file a
    ``model`` under the route's own media type). The schemas are those ``errors`` registers."""
    return {
        code: {
            "description": "invalid input" if code == 422 else "refused",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{_error_model(code)}"}}},
        }
        for code in codes
    }


def _error_model(code: int) -> str:
    return (InvalidBody if code == 422 else ErrorBody).__name__


class CsvResponse(Response):
    """A CSV answer: routes that send one declare it as their ``response_class`` (the schema then says text/csv)."""

    media_type = "text/csv"


class StatusMessage(BaseModel):
    status: str


# -- accounts and sessions --------------------------------------------------------------------------------------
class Tokens(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str


class Jwks(BaseModel):
    keys: list[dict[str, Any]]


class BrowserSession(BaseModel):
    username: str
    expires_in: int


class AuthEnabled(BaseModel):
    enabled: bool
    client_id: str | None
    realm: str | None


class TokenOwner(BaseModel):
    username: str
    platform_admin: bool


class Account(BaseModel):
    username: str
    platform_admin: bool
    active: bool


class CohortWithRole(BaseModel):
    id: int
    name: str
    role: str | None


class Me(BaseModel):
    username: str
    platform_admin: bool
    cohorts: list[CohortWithRole]


# -- cohorts and invites ----------------------------------------------------------------------------------------
class CohortView(BaseModel):
    id: int
    name: str
    description: str
    role: str | None
    members: int
    items: int
    identified: bool = Field(description="true: data stored as sent; false: de-identified before storing")


class AttachedItem(BaseModel):
    study_uid: str
    series_uid: str


class Attachment(BaseModel):
    cohort_id: int
    attached: list[AttachedItem]


class Member(BaseModel):
    username: str
    role: str


class Removed(BaseModel):
    status: str
    username: str


class Invite(BaseModel):
    id: int
    cohort_id: int
    role: str
    max_uses: int
    uses: int
    expires_at: str
    state: str
    created_by: str
    created_at: str


class InviteWithCode(Invite):
    code: str


class Grant(BaseModel):
    username: str
    cohort_id: int
    cohort: str
    role: str


Registered = Grant


# -- health and audit -------------------------------------------------------------------------------------------
class Health(BaseModel):
    status: str
    version: str
    checks: dict[str, bool]
    models: dict[str, str] | None = None
    disabled_models: dict[str, str] | None = None
    device: str | None = None
    detail: str | None = None


class AuditEventOut(BaseModel):
    id: int
    time: str
    actor: str
    action: str
    outcome: str
    target: str
    cohort: str
    params: dict[str, Any]
    source: str
    prev_hash: str
    hash: str


# -- models -----------------------------------------------------------------------------------------------------
class CohortRef(BaseModel):
    id: int
    name: str


class SegmentationModel(BaseModel):
    name: str
    version: str
    modality: str
    labels: dict[str, int]
    demo_weights: bool
    intended_use: str
    expected_runtime_s: dict[str, float]
    validation: dict[str, Any]
    cohorts: list[CohortRef]


class ModelBinding(BaseModel):
    model: str
    cohorts: list[CohortRef]


class ClassificationModel(BaseModel):
    name: str
    version: str
    labels: list[str]
    input_schema: Any
    preset: Any
    demo: bool
    notice: Any
    intended_use: str
    validation: Any


class Prediction(BaseModel):
    """A prediction, the same wherever it is answered (made now, or listed later)."""

    id: int
    label: str
    probabilities: dict[str, float]
    model: str
    model_version: str
    study_uid: str | None
    series_uid: str | None
    feature_set_id: int | None
    cohort_id: int | None
    created_by: str
    created_at: str
    notice: str
    provenance: dict[str, Any]


# -- segmentations ----------------------------------------------------------------------------------------------
class Review(BaseModel):
    id: int
    reviewer: str
    status: str
    comment: str
    created_at: str


class SegmentationListing(BaseModel):
    seg_uid: str
    role: str | None
    tag: str | None
    algorithm_type: str | None
    author: str | None
    model: str | None
    model_version: str | None
    description: str | None
    created_at: str
    segments: Any
    derived_from: str | None
    cohorts: list[CohortWithRole]
    created_by: str | None
    reader: str | None
    origin: str | None
    reviews: list[Review]
    demo_weights: bool = Field(description="derived from demo weights: not for clinical use")


class SegmentationImported(BaseModel):
    seg_uid: str
    series_uid: str
    format: str
    segments: Any
    seconds: dict[str, float]


class SegmentationSaved(BaseModel):
    seg_uid: str = Field(description="the stored SEG's SeriesInstanceUID")
    series_uid: str
    format: str
    segments: Any = Field(description="number, label, coded type and volume (mL) of each segment")
    algorithm_type: str = Field(description="SEMIAUTOMATIC with based_on, else MANUAL")
    author: str = Field(description="the logged-in user: the SEG's Content Creator's Name")
    derived_from: str | None = Field(description="the prediction the edit started from (based_on)")
    seconds: dict[str, float]


class SegmentationInterpolated(BaseModel):
    seg_uid: str
    derived_from: str
    segment_number: int
    added_voxels: int
    segments: Any


class Deleted(BaseModel):
    status: str
    seg_uid: str


# -- radiomics --------------------------------------------------------------------------------------------------
class FeatureSetSummary(BaseModel):
    id: int
    study_uid: str
    series_uid: str
    seg_uid: str
    segment_number: int
    preset: str | None
    tag: str
    feature_count: int
    created_by: str
    created_at: str


class FeatureSet(FeatureSetSummary):
    features: dict[str, Any]
    provenance: dict[str, Any]


class Preset(BaseModel):
    name: str
    version: int
    ref: str
    builtin: bool
    cohort_id: int | None
    created_by: str
    created_at: str | None
    parameters: dict[str, Any]


# -- scores and agreement ---------------------------------------------------------------------------------------
class ScoreType(BaseModel):
    id: int
    key: str
    name: str
    kind: str
    labels: dict[str, str] | None
    minimum: float | None
    maximum: float | None
    cohort_id: int | None
    created_by: str
    created_at: str


class Score(BaseModel):
    id: int
    target_uid: str
    target_kind: str
    study_uid: str | None
    series_uid: str | None
    cohort_id: int | None
    score_type: str
    score_type_id: int
    value: Any
    value_label: str | None
    confidence: float | None
    comment: str
    rater: str
    created_at: str


class ScoreSummary(BaseModel):
    target_uid: str
    target_kind: str
    score_type: str
    score_type_id: int
    count: int
    raters: list[str]
    distribution: dict[str, Any]
    mean_confidence: float | None


class ScoreList(BaseModel):
    scores: list[Score]
    summary: list[ScoreSummary]


class AgreementAuthor(BaseModel):
    author: str
    kind: str = Field(description="account (a platform user), reader (declared by an import) or model")
    seg_uid: str
    role: str | None
    model: str | None
    created_by: str | None


class SegmentPairAgreement(BaseModel):
    author_a: str
    author_b: str
    kind_a: str
    kind_b: str
    seg_a: str
    seg_b: str
    segment_a: int | None = Field(description="the segment's number in seg_a; None: seg_a has no such segment")
    segment_b: int | None = Field(description="the matched segment's number in seg_b (matched by coded type or label)")
    label_a: str
    label_b: str
    segment_type: str = Field(description="the coded type the two segments share (e.g. Neoplasm), or Tissue")
    dice: float
    hd95_mm: float | None
    volume_a_ml: float
    volume_b_ml: float
    volume_difference_ml: float
    volume_difference_percent: float | None


class SegmentationAgreement(BaseModel):
    series_uid: str
    authors: list[AgreementAuthor]
    spacing_mm: list[float]
    pairs: list[SegmentPairAgreement]


class CohenKappa(BaseModel):
    rater_a: str
    rater_b: str
    items: int
    kappa: float | None


class ScoreAgreement(BaseModel):
    cohort_id: int
    score_type: ScoreType
    raters: list[str]
    items: int
    items_scored_by_all: int
    cohen_kappa: list[CohenKappa]
    cohen_weights: str | None
    fleiss_kappa: float | None
    krippendorff_alpha: float | None
    krippendorff_level: str


# -- cohort batches ------------------------------------------------------------------------------------------------
class BatchCounts(BaseModel):
    pending: int
    running: int
    done: int
    failed: int


class BatchCreated(BaseModel):
    id: int
    status: str
    counts: BatchCounts


class BatchStatus(BaseModel):
    id: int
    cohort: int
    kind: str
    status: str = Field(description="pending, running, done or cancelled")
    description: str
    tag: str
    spec: dict[str, Any] = Field(description="the model or preset, its version, the seg choice and the selection")
    counts: BatchCounts
    total: int
    created_by: str
    created: str | None
    started: str | None
    finished: str | None
    eta_s: float | None = Field(description="seconds left at the pace so far; null until an item has finished")


class BatchItemOut(BaseModel):
    series_uid: str
    study_uid: str
    patient: str
    status: str
    attempts: int
    inputs: dict[str, Any]
    output: str | None = Field(description="the stored SEG's series UID, or the feature set's or prediction's id")
    error: str | None
    duration_s: float | None
    updated: str | None


class BatchPatientPlan(BaseModel):
    patient: str
    matched: list[dict[str, Any]]
    unmatched: list[dict[str, Any]] = Field(description="each with the reason it does not run")
    ambiguous: list[dict[str, Any]] = Field(description="each with its candidate SEGs or feature sets")


class BatchDryRun(BaseModel):
    kind: str
    dry_run: bool
    spec: dict[str, Any]
    patients: list[BatchPatientPlan]
    counts: dict[str, int]


class DeidentificationPolicyIn(BaseModel):
    """A cohort's de-identification policy (PS3.15 Annex E Basic Profile and the options named)."""

    identified: bool = Field(description="true: data stored as sent (synthetic data only); false: de-identified")
    options: list[str] = Field(
        default_factory=list,
        max_length=3,
        description="retain_longitudinal_modified_dates, retain_patient_characteristics, clean_descriptors",
    )
    allow_burned_in: bool = Field(
        default=False, description="let in burned-in annotation and high-risk kinds (US, secondary capture, documents)"
    )


class DeidentificationPolicyOut(DeidentificationPolicyIn):
    cohort_id: int
