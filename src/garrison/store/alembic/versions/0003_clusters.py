"""clusters, their assessments (findings, score over time), exemptions, alert suppression rules; alerts
get a ``resolved`` status (and ``open`` is called ``active``)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

T = 32


def upgrade() -> None:
    op.create_table(
        "clusters",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("agent_user_id", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(T), nullable=False),
        sa.Column("assessment_id", sa.Integer, nullable=False),
        sa.Column("assessed_at", sa.String(T), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_clusters"),
        sa.ForeignKeyConstraint(["agent_user_id"], ["users.id"], name="fk_clusters_agent_user_id_users"),
    )
    op.create_table(
        "cluster_assessments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cluster_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("posted_by", sa.String(128), nullable=False),
        sa.Column("received_at", sa.String(T), nullable=False),
        sa.Column("finished_at", sa.String(T), nullable=False),
        sa.Column("resources", sa.Integer, nullable=False),
        sa.Column("findings", sa.Integer, nullable=False),
        sa.Column("exempted", sa.Integer, nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cluster_assessments"),
        sa.ForeignKeyConstraint(["cluster_id"], ["clusters.id"], name="fk_cluster_assessments_cluster_id_clusters"),
    )
    op.create_index("ix_cluster_assessments_cluster_id", "cluster_assessments", ["cluster_id"])
    op.create_table(
        "cluster_snapshots",
        sa.Column("assessment_id", sa.Integer, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("assessment_id", name="pk_cluster_snapshots"),
        sa.ForeignKeyConstraint(
            ["assessment_id"], ["cluster_assessments.id"], name="fk_cluster_snapshots_assessment_id_cluster_assessments"
        ),
    )
    op.create_table(
        "cluster_findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cluster_id", sa.String(64), nullable=False),
        sa.Column("assessment_id", sa.Integer, nullable=False),
        sa.Column("control_id", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("frameworks", sa.JSON, nullable=False),
        sa.Column("kind", sa.String(256), nullable=False),
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("object", sa.String(1024), nullable=False),
        sa.Column("container", sa.String(256), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("actual", sa.Text, nullable=False),
        sa.Column("expected", sa.Text, nullable=False),
        sa.Column("remediation", sa.Text, nullable=False),
        sa.Column("exempted", sa.Boolean, nullable=False),
        sa.Column("exemption_id", sa.Integer, nullable=False),
        sa.Column("exempt_reason", sa.Text, nullable=False),
        sa.Column("exempt_origin", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cluster_findings"),
        sa.ForeignKeyConstraint(["cluster_id"], ["clusters.id"], name="fk_cluster_findings_cluster_id_clusters"),
    )
    op.create_index("ix_cluster_findings_assessment_id", "cluster_findings", ["assessment_id"])
    op.create_index("ix_cluster_findings_cluster_id", "cluster_findings", ["cluster_id", "control_id"])
    op.create_index("ix_cluster_findings_exemption_id", "cluster_findings", ["exemption_id"])
    op.create_table(
        "cluster_scores",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("assessment_id", sa.Integer, nullable=False),
        sa.Column("cluster_id", sa.String(64), nullable=False),
        sa.Column("at", sa.String(T), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("checks", sa.Integer, nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("exempted", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cluster_scores"),
        sa.ForeignKeyConstraint(
            ["assessment_id"], ["cluster_assessments.id"], name="fk_cluster_scores_assessment_id_cluster_assessments"
        ),
    )
    op.create_index("ix_cluster_scores_assessment_id", "cluster_scores", ["assessment_id"])
    op.create_index("ix_cluster_scores_cluster_id", "cluster_scores", ["cluster_id", "scope", "name", "at"])
    op.create_table(
        "exemptions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cluster", sa.String(64), nullable=False),
        sa.Column("controls", sa.JSON, nullable=False),
        sa.Column("namespaces", sa.JSON, nullable=False),
        sa.Column("resources", sa.JSON, nullable=False),
        sa.Column("selector", sa.JSON, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("expires", sa.String(10), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(T), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exemptions"),
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(256), nullable=False),
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("image", sa.String(512), nullable=False),
        sa.Column("user", sa.String(256), nullable=False),
        sa.Column("cluster", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("expires_at", sa.String(T), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.String(T), nullable=False),
        sa.Column("caught", sa.Integer, nullable=False),
        sa.Column("last_caught_at", sa.String(T), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_suppressions"),
    )
    # Alerts: resolved (by whom, why, when), found by cluster; "open" is now "active".
    for name, type_ in (("resolved_by", sa.String(128)), ("resolved_reason", sa.Text()), ("resolved_at", sa.String(T))):
        op.add_column("alerts", sa.Column(name, type_, nullable=False, server_default=""))
    op.create_index("ix_alerts_cluster", "alerts", ["cluster"])
    op.execute("UPDATE alerts SET status = 'active' WHERE status = 'open'")


def downgrade() -> None:
    op.execute("UPDATE alerts SET status = 'open' WHERE status IN ('active', 'resolved')")
    op.drop_index("ix_alerts_cluster", "alerts")
    with op.batch_alter_table("alerts") as batch:
        for name in ("resolved_at", "resolved_reason", "resolved_by"):
            batch.drop_column(name)
    for table in (
        "suppressions",
        "exemptions",
        "cluster_scores",
        "cluster_findings",
        "cluster_snapshots",
        "cluster_assessments",
        "clusters",
    ):
        op.drop_table(table)
