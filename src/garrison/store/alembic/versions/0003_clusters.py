"""clusters, their resources and assessments
(recommendations, score over time), exemptions, alert suppression rules

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

T = 32


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
