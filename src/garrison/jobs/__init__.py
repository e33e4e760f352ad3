"""Jobs: what the server does in the background (scan on push, rescans, notifications, assessments).

A job is a task name from :data:`garrison.jobs.tasks.TASKS` and a JSON payload. Producers (routers,
services) only see :class:`Queue`; two implementations run the same handlers: the inline queue
(:mod:`.inline`: threads in the server's process over the server's own database) and a real queue on
PostgreSQL (:mod:`.pg`, procrastinate) for many workers on many machines. See docs/jobs.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from garrison.services.settings import ServerSettings
    from garrison.store.repos import Store


class Queue(Protocol):
    def enqueue(
        self, task: str, payload: Mapping[str, Any], *, lock: str | None = None, queueing_lock: str | None = None
    ) -> str:
        """Queue ``task`` with its JSON ``payload`` and return the job's id. Jobs sharing a ``lock`` never
        run at the same time (one image is never scanned twice at once). With a ``queueing_lock``, a job
        is not added while another with the same queueing lock still waits (the waiting one's id is
        returned). ValueError for a task that is not in :data:`~garrison.jobs.tasks.TASKS`."""
        ...


@dataclass(frozen=True)
class JobContext:
    """What a handler gets besides its payload: the store, the queue (to enqueue follow-up jobs) and the
    server's settings."""

    store: Store
    queue: Queue
    settings: ServerSettings


#: A task's handler. It must be safe to run again after a crash (a job killed midway runs again).
Handler = Callable[[JobContext, dict[str, Any]], None]


@dataclass(frozen=True)
class JobInfo:
    """One job as a queue reports it."""

    id: str
    task: str
    #: ``queued`` (waiting, or waiting for a retry), ``running``, ``done`` or ``failed``.
    status: str
    #: Runs started so far (one cut short by a crash counts).
    attempts: int
    #: The last run's error (``Type: message``), "" when none failed.
    last_error: str


#: The states a queue reports its jobs in (each of procrastinate's maps to one of them).
STATES = ("queued", "running", "done", "failed")


class JobCounts(Mapping[str, int]):
    """How many jobs a queue holds: as a mapping, by state (every one of :data:`STATES`, 0 included);
    :attr:`by_task`, by (task, state) — every task of :data:`~garrison.jobs.tasks.TASKS` in every state,
    and any other task name the queue still holds jobs of (one a newer or older garrison queued)."""

    def __init__(self, found: Mapping[tuple[str, str], int]) -> None:
        from garrison.jobs.tasks import TASKS  # here: tasks imports this module

        by_task = {(task, state): 0 for task in TASKS for state in STATES}
        for key, n in found.items():
            by_task[key] = by_task.get(key, 0) + n
        self.by_task: dict[tuple[str, str], int] = dict(sorted(by_task.items()))
        self._by_state = dict.fromkeys(STATES, 0)
        for (_, state), n in by_task.items():
            self._by_state[state] = self._by_state.get(state, 0) + n

    def __getitem__(self, state: str) -> int:
        return self._by_state[state]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_state)

    def __len__(self) -> int:
        return len(self._by_state)

    def __repr__(self) -> str:
        return f"JobCounts({self._by_state})"


class ManagedQueue(Queue, Protocol):
    """A queue the server or a worker process owns: :meth:`start` begins running jobs (if this process
    runs any), :meth:`stop` finishes the running ones within ``grace`` seconds and leaves the rest (and
    any it had to cut short) queued for the next process."""

    def start(self) -> None: ...
    def stop(self, grace: float = 30.0) -> None: ...
    def counts(self) -> JobCounts:
        """Jobs by state (``queued``, ``running``, ``done``, ``failed``) and by task and state, in one read
        (for metrics and for tests that wait for the queue to drain)."""
        ...

    def job(self, job_id: str) -> JobInfo | None:
        """The job ``job_id`` (None when it is unknown, or so old it was removed)."""
        ...


@dataclass(frozen=True)
class JobOptions:
    """How a queue runs its jobs. The defaults suit one server; ``garrison server worker`` sets
    ``concurrency`` from its flag."""

    #: Jobs run at once by this process (threads of the inline queue, procrastinate's concurrency).
    concurrency: int = 2
    #: Runs of a job before it is failed (the first run and the retries; a crash counts as a run).
    max_attempts: int = 5
    #: Seconds before the first retry; each further retry waits twice as long, at most ``retry_max``.
    retry_base: float = 2.0
    retry_max: float = 600.0
    #: Seconds between a worker's heartbeats (also how often it looks for other workers' stalled jobs,
    #: and how long an idle inline worker sleeps at most). One value for every process: a worker takes
    #: back the jobs of another whose last heartbeat is older than ``stale_after``, so that must stay
    #: several heartbeats long (``garrison server worker`` only sets ``stale_after``, at least 3 s).
    heartbeat: float = 1.0
    #: Seconds since a worker's last heartbeat after which its jobs are taken back (it stopped without
    #: saying so: killed, frozen, its machine gone).
    stale_after: float = 30.0
    #: Seconds between two periodic ``rescan_all`` jobs (0: none).
    rescan_interval: float = 3600.0
    #: Seconds between two periodic ``purge_deliveries`` jobs (0: none; an hour on PostgreSQL is a cron
    #: line, like the rescan's interval).
    purge_interval: float = 3600.0
    #: Finished jobs are kept this many days, then removed by the queue itself (both queues; on
    #: PostgreSQL with each failed run's error).
    keep_days: float = 7.0

    def backoff(self, attempts: int) -> float:
        """Seconds to wait before the run after ``attempts`` runs."""
        return float(min(self.retry_max, self.retry_base * 2 ** max(0, attempts - 1)))


def is_postgresql(database_url: str) -> bool:
    return database_url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def open_queue(
    settings: ServerSettings, store: Store, *, run_jobs: bool = True, options: JobOptions | None = None
) -> ManagedQueue:
    """The queue for ``settings.database_url``: inline on SQLite (jobs run in this process), the
    PostgreSQL queue otherwise (``run_jobs``: this process works too, as ``garrison server worker`` does)."""
    opts = options or JobOptions()
    if is_postgresql(settings.database_url):
        from garrison.jobs.pg import PostgresQueue

        return PostgresQueue(settings, store, opts, run_jobs=run_jobs)
    from garrison.jobs.inline import InlineQueue

    return InlineQueue(settings, store, opts, run_jobs=run_jobs)


def prepare(database_url: str) -> None:
    """Make the database ready for its queue, after the store's migrations: procrastinate's schema on
    PostgreSQL (applied once; workers starting together wait for each other), nothing on SQLite (the
    ``jobs`` table is migration ``0004``). Safe to call at every start; :func:`open_queue` calls it too."""
    if is_postgresql(database_url):
        from garrison.jobs.pg import prepare as prepare_pg

        prepare_pg(database_url)
