"""Every SEG records the account that stored it (``created_by``) and, for an import, the reader it declares.

``created_by`` is backfilled from the SEG's origin (who made it here), else from its old author; an import whose
author differed from its importer declared that author as its reader.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("segmentations") as batch:
        batch.add_column(sa.Column("created_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reader", sa.String(128), nullable=True))
    segmentations = sa.table(
        "segmentations",
        sa.column("seg_series_uid", sa.String),
        sa.column("author", sa.String),
        sa.column("created_by", sa.String),
        sa.column("reader", sa.String),
    )
    origins = sa.table(
        "segmentation_origins",
        sa.column("seg_series_uid", sa.String),
        sa.column("created_by", sa.String),
        sa.column("operation", sa.String),
    )
    origin_of = origins.c.seg_series_uid == segmentations.c.seg_series_uid
    creator = sa.select(origins.c.created_by).where(origin_of).scalar_subquery()
    op.execute(
        segmentations.update().values(
            created_by=sa.func.coalesce(creator, sa.func.substr(segmentations.c.author, 1, 64))
        )
    )
    declared = sa.exists().where(
        origin_of, origins.c.operation == "import", origins.c.created_by != segmentations.c.author
    )
    op.execute(segmentations.update().where(declared).values(reader=segmentations.c.author))


def downgrade() -> None:
    with op.batch_alter_table("segmentations") as batch:
        batch.drop_column("reader")
        batch.drop_column("created_by")
