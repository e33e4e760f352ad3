"""notification targets (webhooks, Slack) and deliveries with retries

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

T = 32


def upgrade() -> None:
    op.create_table(
        "notification_targets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("host", sa.String(300), nullable=False),
        sa.Column("url_sealed", sa.Text, nullable=False),
        sa.Column("header_names", sa.JSON, nullable=False),
        sa.Column("headers_sealed", sa.Text, nullable=False),
        sa.Column("events", sa.JSON, nullable=False),
        sa.Column("min_severity", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(T), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notification_targets"),
        sa.UniqueConstraint("name", name="uq_notification_targets_name"),
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("target_id", sa.Integer, nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(T), nullable=False),
        sa.Column("updated_at", sa.String(T), nullable=False),
        sa.Column("delivered_at", sa.String(T), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_notification_deliveries"),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["notification_targets.id"],
            name="fk_notification_deliveries_target_id_notification_targets",
        ),
    )
    op.create_index("ix_notification_deliveries_target_id_id", "notification_deliveries", ["target_id", "id"])
    op.create_index("ix_notification_deliveries_status", "notification_deliveries", ["status"])


def downgrade() -> None:
    op.drop_table("notification_deliveries")
    op.drop_table("notification_targets")
