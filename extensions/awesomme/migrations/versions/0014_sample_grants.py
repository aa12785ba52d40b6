"""Sample grants: one credential-free download of an active learning sample, for its user, from their address.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sample_grants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("series_uid", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_sample_grants_user_id", "sample_grants", ["user_id"])
    op.create_index("ix_sample_grants_series_uid", "sample_grants", ["series_uid"])


def downgrade() -> None:
    op.drop_index("ix_sample_grants_series_uid", table_name="sample_grants")
    op.drop_index("ix_sample_grants_user_id", table_name="sample_grants")
    op.drop_table("sample_grants")
