"""Failed attempts in the database: the login and invite-code throttles hold across processes and restarts.

Each attempt is written before it is evaluated and removed when it succeeds; reservations queue behind the one
row of ``throttle_lock`` (see ``awesomme.services.throttle``). The journal's anchor lives outside the database
(``var/audit/anchor``) and needs no table.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "failed_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False, server_default=""),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False, index=True),
    )
    op.create_index("ix_failed_attempts_subject", "failed_attempts", ["scope", "subject", "at"])
    op.create_index("ix_failed_attempts_address", "failed_attempts", ["scope", "address", "at"])
    lock = op.create_table(
        "throttle_lock",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("taken", sa.Integer, nullable=False),
    )
    # The one lock row exists from the start: reservations only ever update it.
    op.bulk_insert(lock, [{"id": 1, "taken": 0}])


def downgrade() -> None:
    op.drop_table("throttle_lock")
    op.drop_index("ix_failed_attempts_address", table_name="failed_attempts")
    op.drop_index("ix_failed_attempts_subject", table_name="failed_attempts")
    op.drop_table("failed_attempts")
