"""A SEG records whether it derives from demo weights (a prediction of a demo model, a correction or an
interpolation of one), so that its notice survives every derivation made from now on.

SEGs stored before are not marked (which model weights were demo ones is not in the database); their own DICOM
descriptions carry the notice as they were written.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("segmentations") as batch:
        batch.add_column(sa.Column("demo_weights", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("segmentations") as batch:
        batch.drop_column("demo_weights")
