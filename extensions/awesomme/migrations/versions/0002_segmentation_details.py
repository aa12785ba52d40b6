"""Segmentations: algorithm type, producing model, segments, description and source SEG, for listings.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("segmentations") as table:
        table.add_column(sa.Column("algorithm_type", sa.String(16), nullable=False, server_default="MANUAL"))
        table.add_column(sa.Column("model_name", sa.String(64), nullable=True))
        table.add_column(sa.Column("model_version", sa.String(32), nullable=True))
        table.add_column(sa.Column("description", sa.String(256), nullable=True))
        table.add_column(sa.Column("segments", sa.JSON(), nullable=False, server_default="[]"))
        table.add_column(sa.Column("derived_from", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("segmentations") as table:
        for column in ("derived_from", "segments", "description", "model_version", "model_name", "algorithm_type"):
            table.drop_column(column)
