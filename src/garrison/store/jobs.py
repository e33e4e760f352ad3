"""The store's the inline job queue's table (SQLite and PostgreSQL without procrastinate)

Tables (on :data:`garrison.store.tables.metadata`) and repository.

Created by migration ``0004``."""

from __future__ import annotations

from garrison.store.tables import metadata  # noqa: F401 - the tables of this module go on it
