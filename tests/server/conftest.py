"""A server over a fresh SQLite file per test, one user (and token) per role, and the runtime rules
loaded once per session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from garrison.runtime.engine import RuleSet
from garrison.server.app import create_app
from garrison.services import server as svc
from garrison.services.runtime import RuntimeOptions, load_ruleset
from garrison.store.db import migrate, open_engine
from garrison.store.records import Role
from garrison.store.repos import SqlStore


@dataclass
class Server:
    client: TestClient
    store: SqlStore
    db_path: Path
    #: role name → bearer token (and "admin" is the one made by init).
    tokens: dict[str, str]

    def headers(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture(scope="session")
def ruleset() -> RuleSet:
    return load_ruleset(RuntimeOptions())


@pytest.fixture
def server(tmp_path: Path, ruleset: RuleSet) -> Iterator[Server]:
    db = tmp_path / "server.db"
    engine = open_engine(f"sqlite:///{db}")
    migrate(engine)
    store = SqlStore(engine)
    tokens = {"admin": svc.init_admin(store).secret}
    for role in (Role.SECURITY_ADMIN, Role.SECURITY_READER, Role.AGENT):
        tokens[role.value] = svc.create_user(store, svc.CLI_ACTOR, role.value, role.value)[1].secret
    with TestClient(create_app(store, ruleset)) as client:
        yield Server(client, store, db, tokens)
    engine.dispose()
