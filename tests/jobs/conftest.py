"""Queues over a fresh database per test (SQLite, and PostgreSQL through tests/server's fixtures), with
the test tasks of :mod:`tests.jobs.handlers` registered, and worker processes started the way an operator
starts them (``garrison server worker``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.jobs.handlers import TEST_TASKS
from tests.server.conftest import database_url, db_kind, pg_cluster  # noqa: F401 - fixtures used here
from tests.support.procs import die_with_parent

from garrison.jobs import JobOptions, ManagedQueue, open_queue, prepare
from garrison.jobs.tasks import TASKS
from garrison.services.settings import ServerSettings
from garrison.store.db import migrate, open_engine
from garrison.store.repos import SqlStore

ROOT = Path(__file__).resolve().parents[2]
#: Quick retries and heartbeats, so the tests see them happen.
FAST = JobOptions(
    concurrency=3, retry_base=0.1, retry_max=0.5, heartbeat=0.3, stale_after=3.0, rescan_interval=0, purge_interval=0
)
# (worker processes keep the 1 s heartbeat every process has; their jobs are taken back after 3 s)


@pytest.fixture(autouse=True)
def test_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, target in TEST_TASKS.items():
        monkeypatch.setitem(TASKS, name, target)


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:  # noqa: F811 - the imported fixture
    engine = open_engine(database_url)
    migrate(engine)
    prepare(database_url)
    yield SqlStore(engine)
    engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> ServerSettings:  # noqa: F811
    return ServerSettings(data_dir=tmp_path / "data", database_url=database_url)


QueueFactory = Callable[..., ManagedQueue]


@pytest.fixture
def make_queue(store: SqlStore, settings: ServerSettings) -> Iterator[QueueFactory]:
    """``make_queue(run_jobs=True, **options)``: a queue (not started); every one is stopped at the end."""
    made: list[ManagedQueue] = []

    def make(run_jobs: bool = True, **options: object) -> ManagedQueue:
        from dataclasses import replace

        q = open_queue(settings, store, run_jobs=run_jobs, options=replace(FAST, **options))  # type: ignore[arg-type]
        made.append(q)
        return q

    yield make
    for q in made:
        q.stop(grace=2.0)


class Worker:
    """A ``garrison server worker`` process (its standard error is kept in a file)."""

    def __init__(self, database_url: str, tmp: Path, *flags: str, env: dict[str, str] | None = None) -> None:  # noqa: F811
        self.log = tmp / f"worker-{os.urandom(3).hex()}.log"
        full = {**os.environ, "PYTHONPATH": str(ROOT), "GARRISON_DATA_DIR": str(tmp / "data"), **(env or {})}
        cmd = [sys.executable, "-m", "tests.jobs.run_worker", "--database", database_url, *flags]
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=full, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=die_with_parent
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL, and reap it (a zombie still answers ``kill -0``)."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        os.kill(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def workers(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Worker]]:  # noqa: F811
    """``workers(*flags, env=None)`` starts a worker process on the test's database (quick heartbeats: its
    jobs are taken back 3 s after it stops beating); all are killed at the end."""
    started: list[Worker] = []

    def start(*flags: str, env: dict[str, str] | None = None) -> Worker:
        quick = ("--stalled-after", "3", "--rescan-interval", "0")
        w = Worker(database_url, tmp_path, *quick, *flags, env=env)
        started.append(w)
        return w

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait(10)
