"""admission decisions (each one recorded)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

T = 32


def upgrade() -> None:
    op.create_table(
        "admission_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(T), nullable=False),
        sa.Column("cluster", sa.String(256), nullable=False),
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(128), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("allowed", sa.Boolean, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("warnings", sa.JSON, nullable=False),
        sa.Column("break_glass", sa.Text, nullable=False),
        sa.Column("uid", sa.String(128), nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("skipped", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_admission_decisions"),
    )
    op.create_index("ix_admission_decisions_at", "admission_decisions", ["at"])
    op.create_index("ix_admission_decisions_cluster_at", "admission_decisions", ["cluster", "at"])
    op.create_index("ix_admission_decisions_namespace", "admission_decisions", ["namespace"])


def downgrade() -> None:
    op.drop_table("admission_decisions")
