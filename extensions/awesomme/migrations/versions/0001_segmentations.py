"""Segmentations: which SEG in Orthanc is a label or a prediction of which series.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segmentations",
        sa.Column("seg_series_uid", sa.String(64), primary_key=True),
        sa.Column("seg_sop_uid", sa.String(64), nullable=False),
        sa.Column("source_series_uid", sa.String(64), nullable=False),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("author", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_segmentations_source", "segmentations", ["source_series_uid", "role", "tag"])


def downgrade() -> None:
    op.drop_index("ix_segmentations_source", "segmentations")
    op.drop_table("segmentations")
