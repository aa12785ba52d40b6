"""Refresh token families: every refresh token carries the family (one login) it was rotated from.

Logout ends the whole family, and replaying a spent (rotated) refresh token revokes the family, successors
included. Tokens issued before this revision have no family and are treated as a family of their own.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("family", sa.String(64), nullable=True))
        batch.add_column(sa.Column("spent", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.create_index("ix_refresh_tokens_family", ["family"])


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_index("ix_refresh_tokens_family")
        batch.drop_column("spent")
        batch.drop_column("family")
