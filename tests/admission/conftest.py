"""The server fixtures (a fresh database per test, SQLite and PostgreSQL) for the webhook's tests on the
main server."""

from __future__ import annotations

from tests.server.conftest import database_url, pg_cluster, ruleset, server  # noqa: F401 - fixtures used here
