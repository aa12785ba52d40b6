"""Score types and scores; the built-in score types are seeded here.

Seeded in the migration rather than at start-up: every database at this revision has them, tests and scripts
that only migrate included, and the values written are frozen with the revision that introduced them.

Revision ID: 0009
Revises: 0008
"""

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The modified Rankin Scale (van Swieten et al., Stroke 1988), with its standard grade descriptions.
MRS_LABELS = {
    "0": "No symptoms at all",
    "1": "No significant disability despite symptoms; able to carry out all usual duties and activities",
    "2": "Slight disability; unable to carry out all previous activities, but able to look after own affairs "
    "without assistance",
    "3": "Moderate disability; requiring some help, but able to walk without assistance",
    "4": "Moderately severe disability; unable to walk without assistance and unable to attend to own bodily needs "
    "without assistance",
    "5": "Severe disability; bedridden, incontinent and requiring constant nursing care and attention",
    "6": "Dead",
}
BUILT_IN: list[dict[str, Any]] = [
    {"key": "mrs", "name": "Modified Rankin Scale", "kind": "ordinal", "labels": MRS_LABELS},
    {"key": "free_text", "name": "Free text", "kind": "text", "labels": None},
    {"key": "numeric", "name": "Numeric score (0 to 100)", "kind": "numeric", "minimum": 0.0, "maximum": 100.0},
]


def upgrade() -> None:
    score_types = op.create_table(
        "score_types",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("labels", sa.JSON, nullable=True),
        sa.Column("minimum", sa.Float, nullable=True),
        sa.Column("maximum", sa.Float, nullable=True),
        sa.Column("cohort_id", sa.Integer, sa.ForeignKey("cohorts.id", ondelete="CASCADE"), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("key", "cohort_id"),
    )
    op.create_table(
        "scores",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("target_uid", sa.String(64), nullable=False, index=True),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("series_uid", sa.String(64), nullable=False, index=True),
        sa.Column("cohort_id", sa.Integer, sa.ForeignKey("cohorts.id", ondelete="CASCADE"), nullable=True),
        sa.Column(
            "score_type_id",
            sa.Integer,
            sa.ForeignKey("score_types.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("rater", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        score_types,
        [
            {
                "labels": None,
                "minimum": None,
                "maximum": None,
                **row,
                "cohort_id": None,
                "created_by": "platform",
                "created_at": now,
            }
            for row in BUILT_IN
        ],
    )


def downgrade() -> None:
    op.drop_table("scores")
    op.drop_table("score_types")
