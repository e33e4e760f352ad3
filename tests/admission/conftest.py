"""The server fixtures (a fresh database per test, SQLite and PostgreSQL) for the webhook's tests on the
main server."""

from __future__ import annotations

from tests.server.conftest import (  # noqa: F401 - fixtures used here
    database_url,
    db_kind,
    pg_cluster,
    pg_seed,
    ruleset,
    seeded,
    server,
    sqlite_seed,
)
