"""the inline job queue's table (SQLite and PostgreSQL without procrastinate); the PostgreSQL queue's errors

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

T = 32


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("lock", sa.String(256), nullable=False),
        sa.Column("queueing_lock", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("run_after", sa.String(T), nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(T), nullable=False),
        sa.Column("started_at", sa.String(T), nullable=False),
        sa.Column("finished_at", sa.String(T), nullable=False),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("heartbeat", sa.String(T), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index("ix_jobs_status_run_after", "jobs", ["status", "run_after"])
    op.create_index("ix_jobs_lock", "jobs", ["lock"])
    op.create_index("ix_jobs_queueing_lock", "jobs", ["queueing_lock"])
    op.create_index("ix_jobs_task_created_at", "jobs", ["task", "created_at"])
    op.create_table(
        "job_errors",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(32), nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.String(T), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job_errors"),
    )
    op.create_index("ix_job_errors_job_id", "job_errors", ["job_id"])


def downgrade() -> None:
    op.drop_table("job_errors")
    op.drop_table("jobs")
