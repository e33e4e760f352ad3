"""images, their tags per repository, SBOMs per digest, image findings, registries
(credentials encrypted), scan requests

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

T = 32
D = 160
#: The images table's count columns (open findings by severity, then the verdict's counts).
COUNTS = ("critical", "high", "medium", "low", "negligible", "unknown", "critical_with_fix", "secrets")


def upgrade() -> None:
    op.create_table(
        "registries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("url", sa.String(512), nullable=False),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("credentials", sa.Text, nullable=False),
        sa.Column("agent_user_id", sa.Integer, nullable=True),
        sa.Column("scan_on_push", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.String(T), nullable=False),
        sa.Column("updated_at", sa.String(T), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registries"),
        sa.UniqueConstraint("name", name="uq_registries_name"),
        sa.ForeignKeyConstraint(["agent_user_id"], ["users.id"], name="fk_registries_agent_user_id_users"),
    )
    op.create_index("ix_registries_host", "registries", ["host"])
    op.create_table(
        "images",
        sa.Column("digest", sa.String(D), nullable=False),
        sa.Column("config_digest", sa.String(D), nullable=False),
        sa.Column("architecture", sa.String(32), nullable=False),
        sa.Column("os", sa.String(256), nullable=False),
        sa.Column("packages", sa.Integer, nullable=False),
        *[sa.Column(n, sa.Integer, nullable=False) for n in COUNTS],
        sa.Column("first_seen", sa.String(T), nullable=False),
        sa.Column("last_scanned_at", sa.String(T), nullable=False),
        sa.Column("db_identity", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.String(T), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_images"),
    )
    op.create_table(
        "sboms",
        sa.Column("digest", sa.String(D), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("created_at", sa.String(T), nullable=False),
        sa.Column("updated_at", sa.String(T), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_sboms"),
    )
    op.create_table(
        "image_tags",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("registry", sa.String(256), nullable=False),
        sa.Column("repository", sa.String(256), nullable=False),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(D), nullable=False),
        sa.Column("first_seen", sa.String(T), nullable=False),
        sa.Column("last_seen", sa.String(T), nullable=False),
        sa.Column("last_pushed", sa.String(T), nullable=False),
        sa.Column("last_pulled", sa.String(T), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_image_tags"),
        sa.UniqueConstraint("registry", "repository", "tag", "digest", name="uq_image_tags_ref"),
    )
    op.create_index("ix_image_tags_digest", "image_tags", ["digest"])
    op.create_table(
        "image_findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("digest", sa.String(D), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rule_id", sa.String(256), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("package", sa.String(512), nullable=False),
        sa.Column("installed", sa.String(256), nullable=False),
        sa.Column("fixed_version", sa.String(512), nullable=False),
        sa.Column("has_fix", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_seen", sa.String(T), nullable=False),
        sa.Column("last_seen", sa.String(T), nullable=False),
        sa.Column("fixed_at", sa.String(T), nullable=False),
        sa.Column("revision", sa.String(32), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_image_findings"),
        sa.UniqueConstraint("digest", "fingerprint", name="uq_image_findings_digest"),
    )
    op.create_index("ix_image_findings_rule_id", "image_findings", ["rule_id"])
    op.create_index("ix_image_findings_digest_status", "image_findings", ["digest", "status"])
    op.create_index("ix_image_findings_severity", "image_findings", ["severity"])
    op.create_table(
        "scans",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("reference", sa.String(1024), nullable=False),
        sa.Column("registry_id", sa.Integer, nullable=True),
        sa.Column("digest", sa.String(D), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("authorization", sa.Text, nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("created_at", sa.String(T), nullable=False),
        sa.Column("started_at", sa.String(T), nullable=False),
        sa.Column("finished_at", sa.String(T), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scans"),
    )
    op.create_index("ix_scans_digest", "scans", ["digest"])
    op.create_index("ix_scans_status", "scans", ["status"])
    op.create_table(
        "rescans",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("db_identity", sa.String(64), nullable=False),
        sa.Column("forced", sa.Boolean, nullable=False),
        sa.Column("started_at", sa.String(T), nullable=False),
        sa.Column("finished_at", sa.String(T), nullable=False),
        sa.Column("images", sa.Integer, nullable=False),
        sa.Column("aged_out", sa.Integer, nullable=False),
        sa.Column("appeared", sa.Integer, nullable=False),
        sa.Column("fixed", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rescans"),
    )
    op.create_index("ix_rescans_db_identity", "rescans", ["db_identity"])


def downgrade() -> None:
    for table in ("rescans", "scans", "image_findings", "image_tags", "sboms", "images", "registries"):
        op.drop_table(table)
