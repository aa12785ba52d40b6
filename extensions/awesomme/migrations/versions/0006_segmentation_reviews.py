"""Reviews of segmentations (and what imports record).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segmentation_reviews",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seg_series_uid", sa.String(64), nullable=False, index=True),
        sa.Column("reviewer", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("comment", sa.String(2048), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "segmentation_origins",
        sa.Column("seg_series_uid", sa.String(64), primary_key=True),
        sa.Column("created_by", sa.String(64), nullable=False, index=True),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("source_format", sa.String(16), nullable=True),
        sa.Column("source_name", sa.String(256), nullable=True),
        sa.Column("source_sha256", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("segmentation_origins")
    op.drop_table("segmentation_reviews")
