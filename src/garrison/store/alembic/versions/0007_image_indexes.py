"""image indexes: the platform image a scan of a multi-arch index stored, for verdicts by index digest

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DIGEST = 160
T = 32


def upgrade() -> None:
    op.create_table(
        "image_indexes",
        sa.Column("index_digest", sa.String(DIGEST), nullable=False),
        sa.Column("digest", sa.String(DIGEST), nullable=False),
        sa.Column("seen_at", sa.String(T), nullable=False),
        sa.PrimaryKeyConstraint("index_digest", name="pk_image_indexes"),
    )
    op.create_index("ix_image_indexes_digest", "image_indexes", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_image_indexes_digest", table_name="image_indexes")
    op.drop_table("image_indexes")
