"""The inline queue: jobs in the server's own database (the ``jobs`` table of :mod:`garrison.store.jobs`),
run by a few threads of the process that owns the queue.

Nothing lives only in memory: a job is a row from the moment :meth:`InlineQueue.enqueue` returns, so a
restart loses nothing. Each process marks the jobs it runs with its worker id (``host:pid:nonce``) and a
heartbeat; jobs left ``running`` by a worker that is gone are queued again (or failed once they have had
all their attempts) — at once when the worker was a process of this machine that no longer exists, else
when its heartbeat is older than :attr:`~garrison.jobs.JobOptions.stale_after`. A job that ran to its end
is never run again, so a restart doubles nothing either; one cut short by a crash runs again, which is
why handlers must be safe to repeat.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from garrison.jobs import JobContext, JobCounts, JobInfo, JobOptions
from garrison.jobs import tasks as task_table
from garrison.jobs.tasks import Schedule, schedules
from garrison.services.settings import ServerSettings
from garrison.store.jobs import Job, SqlJobs
from garrison.store.records import iso_of, now_iso
from garrison.store.repos import SqlStore, Store

log = logging.getLogger("garrison.jobs")

#: Longest last error kept with a job.
MAX_ERROR = 2000


def worker_id() -> str:
    """This process's name in the ``worker`` column: ``host:pid:nonce`` (the nonce tells two runs of a
    reused pid apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _local_pid(worker: str) -> int | None:
    """The pid of ``worker`` when it is a process of this machine."""
    host, _, rest = worker.partition(":")
    pid, _, _ = rest.partition(":")
    return int(pid) if host == socket.gethostname() and pid.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def error_text(exc: BaseException) -> str:
    """What is kept of a handler's exception: its type and message, bounded."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def _later(seconds: float) -> str:
    return iso_of(datetime.now(UTC) + timedelta(seconds=seconds))


def engine_of(store: Store, settings: ServerSettings) -> Engine:
    """The store's engine (a SqlStore's own), else one on ``settings.database_url``."""
    if isinstance(store, SqlStore):
        return store.engine
    from garrison.store.db import open_engine

    return open_engine(settings.database_url)


def reader_of(engine: Engine) -> Engine:
    """An engine for the queue's reads (counts for ``/metrics``, a job's state, the next due time). On
    SQLite the store's engine begins every transaction ``IMMEDIATE``, taking the write lock even to read;
    this one reads without a transaction, which in WAL mode never waits for a writer."""
    if engine.dialect.name != "sqlite":
        return engine
    from sqlalchemy import create_engine

    return create_engine(engine.url, connect_args={"check_same_thread": False})


class InlineQueue:
    """The :class:`~garrison.jobs.ManagedQueue` over the ``jobs`` table. ``run_jobs=False``: this process
    only enqueues (some other process runs them)."""

    def __init__(self, settings: ServerSettings, store: Store, options: JobOptions, *, run_jobs: bool = True) -> None:
        self.settings = settings
        self.store = store
        self.options = options
        self.run_jobs = run_jobs
        self.engine = engine_of(store, settings)
        self._reader = reader_of(self.engine)
        self._db_lock = threading.Lock()
        self.worker = worker_id()
        self._context = JobContext(store=store, queue=self, settings=settings)
        self._wake = threading.Condition()
        self._queued = 0  # jobs this process queued: a worker that saw none claimable does not sleep past one
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running: dict[int, str] = {}  # job id → task, the jobs this process runs now
        self._running_lock = threading.Lock()
        self._started_at = now_iso()
        self._purged_at = -math.inf  # the first upkeep purges (monotonic time may be under an hour)
        self._schedules = schedules(options)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction; the queue's threads (and this process's producers) take turns on a lock
        of their own instead of polling for SQLite's, which a busy neighbour can keep from them."""
        with self._db_lock, self.engine.begin() as conn:
            yield conn

    # --- producing -------------------------------------------------------------------------------

    def enqueue(
        self, task: str, payload: Mapping[str, Any], *, lock: str | None = None, queueing_lock: str | None = None
    ) -> str:
        if task not in task_table.TASKS:
            raise ValueError(f"unknown task {task!r} (known: {', '.join(sorted(task_table.TASKS))})")
        with self._write() as conn:
            job_id, new = SqlJobs(conn).add(
                task, payload, lock or "", queueing_lock or "", self.options.max_attempts, now_iso()
            )
        if new:
            log.debug("job %d queued: %s", job_id, task)
            with self._wake:
                self._queued += 1
                self._wake.notify()
        return str(job_id)

    def counts(self) -> JobCounts:
        with self._reader.connect() as conn:
            return JobCounts({(task, s.value): n for (task, s), n in SqlJobs(conn).counts().items()})

    def job(self, job_id: str) -> JobInfo | None:
        if not job_id.isdigit():
            return None
        with self._reader.connect() as conn:
            j = SqlJobs(conn).get(int(job_id))
        return None if j is None else JobInfo(str(j.id), j.task, j.status.value, j.attempts, j.last_error)

    # --- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        if not self.run_jobs or self._threads:
            return
        self._stopping.clear()
        self.recover()
        for n in range(max(1, self.options.concurrency)):
            t = threading.Thread(target=self._work, name=f"garrison-job-{n}", daemon=True)
            t.start()
            self._threads.append(t)
        upkeep = threading.Thread(target=self._upkeep, name="garrison-job-upkeep", daemon=True)
        upkeep.start()
        self._threads.append(upkeep)
        log.info("job queue: %d threads (inline, worker %s)", self.options.concurrency, self.worker)

    def stop(self, grace: float = 30.0) -> None:
        if not self._threads:
            return
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + max(0.0, grace)
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._running_lock:
            cut = dict(self._running)
        if cut:
            with self._write() as conn:
                jobs = SqlJobs(conn)
                for job_id in cut:
                    jobs.release(job_id, self.worker)
            log.warning("job queue: %d job(s) still running after %.0f s left queued: %s", len(cut), grace, cut)
        self._threads = []
        log.info("job queue stopped")

    def recover(self) -> tuple[list[int], list[int]]:
        """Take back the jobs of workers that are gone (see the module's docstring)."""
        stale = _later(-self.options.stale_after)
        with self._write() as conn:
            jobs = SqlJobs(conn)
            dead = []
            for worker, beat in jobs.running_workers().items():
                if worker == self.worker:
                    continue
                pid = _local_pid(worker)
                if (pid is not None and not _alive(pid)) or beat < stale:
                    dead.append(worker)
            requeued, failed = jobs.recover(dead, now_iso())
        if requeued or failed:
            log.warning(
                "job queue: jobs of stopped workers %s: %d queued again %s, %d failed %s",
                dead,
                len(requeued),
                requeued,
                len(failed),
                failed,
            )
            with self._wake:
                self._queued += 1
                self._wake.notify_all()
        return requeued, failed

    def _work(self) -> None:
        while not self._stopping.is_set():
            with self._wake:
                seen = self._queued
            try:
                job = self._claim()
            except Exception as e:  # the database is away: wait and ask again
                log.error("job queue: cannot claim a job: %s", error_text(e))
                self._stopping.wait(self.options.heartbeat)
                continue
            if job is None:
                try:
                    wait = self._idle_wait()
                except Exception as e:
                    log.error("job queue: cannot read the queue: %s", error_text(e))
                    wait = self.options.heartbeat
                with self._wake:
                    if not self._stopping.is_set() and self._queued == seen:
                        self._wake.wait(wait)
                continue
            self._run(job)

    def _claim(self) -> Job | None:
        with self._running_lock:  # registered before the claim commits: stop() never misses a job
            with self._write() as conn:
                job = SqlJobs(conn).claim(self.worker, now_iso())
            if job is not None:
                self._running[job.id] = job.task
        return job

    def _idle_wait(self) -> float:
        """Seconds to sleep when nothing is due: until the next retry is due, at most one heartbeat
        (jobs queued by other processes are seen that late)."""
        with self._reader.connect() as conn:
            due = SqlJobs(conn).next_due()
        wait = self.options.heartbeat
        if due is not None:
            until = (datetime.fromisoformat(due.replace("Z", "+00:00")) - datetime.now(UTC)).total_seconds()
            wait = min(wait, max(0.01, until))
        return wait

    def _run(self, job: Job) -> None:
        began = time.monotonic()
        log.info("job %d %s: attempt %d/%d", job.id, job.task, job.attempts, job.max_attempts)
        try:
            try:
                fn = task_table.handler(job.task)
            except (KeyError, ImportError, AttributeError) as e:
                self._settle(job, error_text(e), retry=False)
                return
            try:
                fn(self._context, dict(job.payload))
            except Exception as e:
                self._settle(job, error_text(e), retry=job.attempts < job.max_attempts)
                return
            kept = self._record(job, lambda jobs: jobs.finish(job.id, self.worker, now_iso()))
            if kept:
                log.info("job %d %s: done in %.2f s", job.id, job.task, time.monotonic() - began)
            else:
                log.warning("job %d %s: ended after it was taken back (it may run again)", job.id, job.task)
        finally:
            with self._running_lock:
                self._running.pop(job.id, None)

    def _record(self, job: Job, change: Callable[[SqlJobs], bool]) -> bool:
        """Write a run's outcome, trying again while the database is away (a job whose end is not written
        stays ``running`` under this worker until it is: taken back only once this process is gone)."""
        while True:
            try:
                with self._write() as conn:
                    return change(SqlJobs(conn))
            except Exception as e:
                if self._stopping.is_set():
                    log.error("job %d %s: its end could not be written: %s", job.id, job.task, error_text(e))
                    return False
                log.error("job %d %s: writing its end: %s; trying again", job.id, job.task, error_text(e))
                self._stopping.wait(self.options.heartbeat)

    def _settle(self, job: Job, error: str, *, retry: bool) -> None:
        if retry:
            wait = self.options.backoff(job.attempts)
            self._record(job, lambda jobs: jobs.retry(job.id, self.worker, error, _later(wait)))
            log.warning(
                "job %d %s: attempt %d failed (%s); again in %.0f s", job.id, job.task, job.attempts, error, wait
            )
        else:
            self._record(job, lambda jobs: jobs.fail(job.id, self.worker, error, now_iso()))
            log.error("job %d %s: failed after %d attempt(s): %s", job.id, job.task, job.attempts, error)

    def _upkeep(self) -> None:
        """Heartbeats, taking back dead workers' jobs, the periodic rescan, purging old jobs."""
        while not self._stopping.wait(self.options.heartbeat):
            try:
                with self._write() as conn:
                    SqlJobs(conn).beat(self.worker, now_iso())
                self.recover()
                self._periodic()
                if time.monotonic() - self._purged_at > 3600:
                    self._purged_at = time.monotonic()
                    with self._write() as conn:
                        gone = SqlJobs(conn).purge(_later(-self.options.keep_days * 86400))
                    if gone:
                        log.info(
                            "job queue: %d finished job(s) older than %g days removed", gone, self.options.keep_days
                        )
            except Exception as e:  # the database is away: the next round tries again
                log.error("job queue upkeep: %s", error_text(e))

    def _periodic(self) -> None:
        """Queue each scheduled task (:func:`~garrison.jobs.tasks.schedules`: the rescan, the purge of old
        deliveries) when its last job (or, for a database that never had one, this queue's start) is
        older than its interval; the check is on the table, so restarts do not postpone it."""
        for s in self._schedules:
            self._due(s)

    def _due(self, s: Schedule) -> None:
        with self._reader.connect() as conn:
            last = SqlJobs(conn).latest(s.task)
        since = last.created_at if last is not None else self._started_at
        if since <= _later(-s.every):
            job_id = self.enqueue(s.task, {}, lock=s.lock or None, queueing_lock=s.task)
            log.info("job queue: periodic %s queued (job %s)", s.task, job_id)
