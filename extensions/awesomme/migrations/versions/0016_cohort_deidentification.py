"""Cohorts' de-identification policy: identified or not, the Basic Profile's options, burned-in instances allowed.

Cohorts that exist already hold data as it was stored: they start identified (nothing stored changes); a cohort
created from now on de-identifies.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cohorts") as batch:
        batch.add_column(sa.Column("identified", sa.Boolean, nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("deidentification_options", sa.JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("allow_burned_in", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("cohorts") as batch:
        batch.drop_column("allow_burned_in")
        batch.drop_column("deidentification_options")
        batch.drop_column("identified")
