"""A server over a fresh database per test — SQLite, and PostgreSQL (a private cluster, ``slow``) when
``initdb`` and psycopg are here — one user (and token) per role, the runtime rules loaded once, and the
real job queue of that database (started: its jobs run while the test runs; ``server.wait_jobs()``
waits for them).

The server's database is a copy of one seeded once per session (migrated by the real migrations, the
job queue's schema applied, the users made through the services): a copy of the SQLite file, a
``CREATE DATABASE … TEMPLATE`` on PostgreSQL. Migrating and seeding each test's database took 1.5 to 3 s
a test; a copy takes milliseconds (SQLite) or about 0.3 s (PostgreSQL). ``database_url`` stays an empty
database, for the tests of the migrations themselves."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.server import postgres

from garrison.jobs import JobCounts, JobOptions, ManagedQueue, open_queue
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

    def wait_jobs(self, timeout: float = 60.0) -> JobCounts:
        """Wait until no job is queued or running (retries waiting for their time count as queued);
        the counts by state then. Raises TimeoutError."""
        return wait_idle(self.queue, timeout)


def wait_idle(queue: ManagedQueue, timeout: float = 60.0) -> JobCounts:
    """Wait until ``queue`` has no job queued or running; its counts by state. Raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        counts = queue.counts()
        if counts["queued"] == 0 and counts["running"] == 0:
            return counts
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs still waiting or running after {timeout} s: {counts}")
        time.sleep(0.05)


#: The server fixture's queue: quick retries and heartbeats, no periodic rescan or purge during a test.
TEST_JOB_OPTIONS = JobOptions(
    concurrency=2, retry_base=0.2, retry_max=2.0, heartbeat=0.5, rescan_interval=0, purge_interval=0
)


@pytest.fixture(scope="session")
def ruleset() -> RuleSet:
    return load_ruleset(RuntimeOptions())


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[str]:
    with postgres.cluster() as base:
        yield base


@pytest.fixture(params=DATABASES)
def db_kind(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql``: the one parameter of every database fixture (a test that needs only
    one says ``@pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)``)."""
    kind: str = request.param
    return kind


@pytest.fixture
def database_url(db_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (not migrated)."""
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'server.db'}"
        return
    with postgres.database(request.getfixturevalue("pg_cluster")) as url:
        yield url


@dataclass(frozen=True)
class Seed:
    """A database migrated and seeded once per session: the SQLite file, or the PostgreSQL template's name."""

    where: str
    #: role name → bearer token of the seeded users.
    tokens: dict[str, str]


def _seed(url: str) -> dict[str, str]:
    """Migrate the empty database at ``url``, apply the queue's schema, make one user per role."""
    engine = open_engine(url)
    try:
        migrate(engine)
        if engine.dialect.name == "postgresql":
            from garrison.jobs.pg import prepare

            prepare(url)
        store = SqlStore(engine)
        tokens = {"admin": svc.init_admin(store).secret}
        for role in (Role.SECURITY_ADMIN, Role.SECURITY_READER, Role.AGENT):
            tokens[role.value] = svc.create_user(store, svc.CLI_ACTOR, role.value, role.value)[1].secret
    finally:
        engine.dispose()
    return tokens


@pytest.fixture(scope="session")
def sqlite_seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    path = tmp_path_factory.mktemp("seed") / "server.db"
    return Seed(str(path), _seed(f"sqlite:///{path}"))


@pytest.fixture(scope="session")
def pg_seed(pg_cluster: str) -> Iterator[Seed]:
    from sqlalchemy import create_engine, text

    name = f"seed{os.getpid()}"
    admin = create_engine(f"{pg_cluster}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY'))
        yield Seed(name, _seed(f"{pg_cluster}/{name}"))
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def seeded(db_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """(URL, tokens) of a fresh copy of the session's seeded database."""
    if db_kind == "sqlite":
        seed: Seed = request.getfixturevalue("sqlite_seed")
        path = tmp_path / "server.db"
        # The backup API copies the database as a reader sees it (the WAL's pages included).
        with sqlite3.connect(seed.where) as src, sqlite3.connect(path) as dst:
            src.backup(dst)
        yield f"sqlite:///{path}", dict(seed.tokens)
        return
    seed = request.getfixturevalue("pg_seed")
    with postgres.database(request.getfixturevalue("pg_cluster"), template=seed.where) as url:
        yield url, dict(seed.tokens)


@pytest.fixture
def server(seeded: tuple[str, dict[str, str]], ruleset: RuleSet, tmp_path: Path) -> Iterator[Server]:
    database_url, tokens = seeded
    engine = open_engine(database_url)
    store = SqlStore(engine)
    settings = ServerSettings(data_dir=tmp_path / "data", database_url=database_url)
    queue = open_queue(settings, store, options=TEST_JOB_OPTIONS)
    queue.start()
    try:
        with TestClient(create_app(store, ruleset, queue=queue, settings=settings)) as client:
            yield Server(client, store, engine.dialect.name, tokens, settings, queue)
    finally:
        queue.stop(grace=5.0)
        engine.dispose()
