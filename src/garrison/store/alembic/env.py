"""Alembic's environment for garrison's store: run by :func:`garrison.store.db.migrate`, which passes
the open connection in ``config.attributes["connection"]`` (no ``alembic.ini``)."""

from __future__ import annotations

from alembic import context

from garrison.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
