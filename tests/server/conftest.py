"""A server over a fresh database per test — SQLite, and PostgreSQL (a private cluster, ``slow``) when
``initdb`` and psycopg are here — one user (and token) per role, the runtime rules loaded once, and the
real job queue of that database (started: its jobs run while the test runs; ``server.wait_jobs()``
waits for them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.server import postgres

from garrison.jobs import JobOptions, ManagedQueue, open_queue
from garrison.runtime.engine import RuleSet
from garrison.server.app import create_app
from garrison.services import server as svc
from garrison.services.runtime import RuntimeOptions, load_ruleset
from garrison.services.settings import ServerSettings
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
    #: The app's settings (data folder: the test's tmp_path) and its queue (running).
    settings: ServerSettings
    queue: ManagedQueue

    def headers(self, role: str | None) -> dict[str, str]:
        return {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}

    def wait_jobs(self, timeout: float = 60.0) -> dict[str, int]:
        """Wait until no job is queued or running (retries waiting for their time count as queued);
        the counts by state then. Raises TimeoutError."""
        return wait_idle(self.queue, timeout)


def wait_idle(queue: ManagedQueue, timeout: float = 60.0) -> dict[str, int]:
    """Wait until ``queue`` has no job queued or running; its counts by state. Raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        counts = queue.counts()
        if counts["queued"] == 0 and counts["running"] == 0:
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs still waiting or running after {timeout} s: {counts}")
        time.sleep(0.05)


#: The server fixture's queue: quick retries and heartbeats, no periodic rescan during a test.
TEST_JOB_OPTIONS = JobOptions(concurrency=2, retry_base=0.2, retry_max=2.0, heartbeat=0.5, rescan_interval=0)


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
def server(database_url: str, ruleset: RuleSet, tmp_path: Path) -> Iterator[Server]:
    engine = open_engine(database_url)
    migrate(engine)
    store = SqlStore(engine)
    tokens = {"admin": svc.init_admin(store).secret}
    for role in (Role.SECURITY_ADMIN, Role.SECURITY_READER, Role.AGENT):
        tokens[role.value] = svc.create_user(store, svc.CLI_ACTOR, role.value, role.value)[1].secret
    settings = ServerSettings(data_dir=tmp_path / "data", database_url=database_url)
    queue = open_queue(settings, store, options=TEST_JOB_OPTIONS)
    queue.start()
    try:
        with TestClient(create_app(store, ruleset, queue=queue, settings=settings)) as client:
            yield Server(client, store, engine.dialect.name, tokens, settings, queue)
    finally:
        queue.stop(grace=5.0)
        engine.dispose()
