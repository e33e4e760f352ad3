"""A server over a fresh database per test — SQLite, and PostgreSQL (a private cluster, ``slow``) when
``initdb`` and psycopg are here — one user (and token) per role, and the runtime rules loaded once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.server import postgres

from garrison.runtime.engine import RuleSet
from garrison.server.app import create_app
from garrison.services import server as svc
from garrison.services.runtime import RuntimeOptions, load_ruleset
from garrison.store.db import migrate, open_engine
from garrison.store.records import Role
from garrison.store.repos import SqlStore

#: The databases every store and server test runs on.
DATABASES = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=[pytest.mark.slow, pytest.mark.skipif(bool(postgres.available()), reason=postgres.available())],
    ),
]


@dataclass
class Server:
    client: TestClient
    store: SqlStore
    #: ``sqlite`` or ``postgresql``.
    kind: str
    #: role name → bearer token (and "admin" is the one made by init).
    tokens: dict[str, str]

    def headers(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture(scope="session")
def ruleset() -> RuleSet:
    return load_ruleset(RuntimeOptions())


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[str]:
    with postgres.cluster() as base:
        yield base


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (not migrated)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'server.db'}"
        return
    with postgres.database(request.getfixturevalue("pg_cluster")) as url:
        yield url


@pytest.fixture
def server(database_url: str, ruleset: RuleSet) -> Iterator[Server]:
    engine = open_engine(database_url)
    migrate(engine)
    store = SqlStore(engine)
    tokens = {"admin": svc.init_admin(store).secret}
    for role in (Role.SECURITY_ADMIN, Role.SECURITY_READER, Role.AGENT):
        tokens[role.value] = svc.create_user(store, svc.CLI_ACTOR, role.value, role.value)[1].secret
    with TestClient(create_app(store, ruleset)) as client:
        yield Server(client, store, engine.dialect.name, tokens)
    engine.dispose()
