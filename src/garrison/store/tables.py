"""The server's tables (SQLAlchemy Core). Portable types only, so one migration serves SQLite and
PostgreSQL: times are fixed-width ISO 8601 UTC text (see :mod:`.records`), JSON is SQLAlchemy's ``JSON``.

The migrations in ``alembic/versions`` create these tables; a test checks that the two agree.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, MetaData, String, Table, Text

#: Constraint names spelled out, so migrations can name them on every database.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TIME = 32  # "2026-12-01T22:44:22.318065Z" and room to spare

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    # An agent's cluster: the events it posts are from there ("" for people and unscoped agents).
    Column("cluster", String(256), nullable=False, default=""),
    Column("created_at", String(TIME), nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("prefix", String(16), nullable=False),
    # SHA-256 (hex) of the token: the token itself is never stored.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", String(TIME), nullable=False),
    Column("expires_at", String(TIME), nullable=False, default=""),
    Column("revoked_at", String(TIME), nullable=False, default=""),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", String(TIME), nullable=False, index=True),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target_type", String(32), nullable=False),
    Column("target_id", String(128), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("detail", JSON, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("rule", String(256), nullable=False, index=True),
    Column("severity", String(16), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("source", String(32), nullable=False),
    Column("output", Text, nullable=False),
    Column("cluster", String(256), nullable=False),
    Column("namespace", String(256), nullable=False),
    Column("entities", JSON, nullable=False),
    Column("count", Integer, nullable=False),
    Column("first_seen", String(TIME), nullable=False),
    Column("last_seen", String(TIME), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("dismissed_by", String(128), nullable=False, default=""),
    Column("dismissed_reason", Text, nullable=False, default=""),
    Column("dismissed_at", String(TIME), nullable=False, default=""),
    Column("updated_at", String(TIME), nullable=False),
    # Added by 0003: who marked it resolved (the problem fixed), why and when ("" unless resolved).
    Column("resolved_by", String(128), nullable=False, default=""),
    Column("resolved_reason", Text, nullable=False, default=""),
    Column("resolved_at", String(TIME), nullable=False, default=""),
    Index("ix_alerts_status_severity", "status", "severity"),
    Index("ix_alerts_namespace", "namespace"),
    Index("ix_alerts_cluster", "cluster"),
)

# The tables of the other aggregates live beside their repositories; importing them here puts every
# table on ``metadata`` whichever module is imported first.
from garrison.store import admission, clusters, images, jobs, notify  # noqa: E402,F401
