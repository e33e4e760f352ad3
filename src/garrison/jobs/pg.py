"""The PostgreSQL queue: procrastinate (its tables beside the server's, in the same database) for many
workers on many machines.

Producers defer jobs through a small synchronous psycopg pool (any thread may call
:meth:`PostgresQueue.enqueue`). A process that runs jobs (``garrison server worker``, or the server with
``run_jobs``) runs a procrastinate worker on an event loop in its own thread; the handlers are ordinary
functions, run in that loop's thread pool (``concurrency`` at once).

What procrastinate gives: jobs with the same ``lock`` never run at once, ``queueing_lock`` keeps one
waiting, retries (our strategy: :meth:`~garrison.jobs.JobOptions.backoff`), periodic jobs (deferred once
per tick whichever worker sees it first), worker heartbeats. What is added here: every
:attr:`~garrison.jobs.JobOptions.heartbeat` each worker looks for jobs whose worker's heartbeat is older
than :attr:`~garrison.jobs.JobOptions.stale_after` (killed, frozen, its machine gone) and queues them again
(or fails them when they have had their attempts); each failed run's error is kept in ``job_errors``
(procrastinate keeps none); and a graceful stop that cannot wait for a job any longer puts it back to
``todo`` for the next worker instead of leaving it ``doing``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, text
from sqlalchemy.engine import make_url

from garrison.jobs import JobContext, JobCounts, JobInfo, JobOptions
from garrison.jobs import tasks as task_table
from garrison.jobs.inline import engine_of, error_text
from garrison.jobs.tasks import schedules
from garrison.services.settings import ServerSettings
from garrison.store import jobs as job_store
from garrison.store.records import iso_of, now_iso
from garrison.store.repos import Store

log = logging.getLogger("garrison.jobs")

#: procrastinate's queue name for garrison's jobs.
QUEUE = "garrison"
#: The advisory lock ``prepare`` holds while it looks for and applies procrastinate's schema.
PREPARE_LOCK = 0x6A6F6275
#: Event loops that ``stop`` had to leave with jobs running.
_ABANDONED: list[asyncio.AbstractEventLoop] = []
#: procrastinate's states → the queue protocol's.
STATES = {
    "todo": "queued",
    "doing": "running",
    "aborting": "running",
    "succeeded": "done",
    "failed": "failed",
    "cancelled": "failed",
    "aborted": "failed",
}


def conninfo(database_url: str) -> str:
    """The libpq URL of a SQLAlchemy ``postgresql[+driver]://`` URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def prepare(database_url: str) -> bool:
    """Apply procrastinate's schema to the database unless it is there already (True when it was
    applied now). Workers starting together wait for each other on an advisory lock."""
    import psycopg
    from procrastinate.schema import SchemaManager

    with psycopg.connect(conninfo(database_url)) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PREPARE_LOCK,))
        row = conn.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()
        if row is not None and row[0] is not None:
            return False
        conn.execute(SchemaManager.get_schema())  # no parameters: one simple query, many statements
        conn.commit()
    log.info("job queue: procrastinate's schema applied")
    return True


def cron_for(seconds: float) -> str:
    """procrastinate's schedules are cron lines: an interval that divides a minute, an hour or a day (in
    whole seconds, minutes or hours), or whole days. ValueError for another."""
    s = int(seconds)
    if s != seconds or s <= 0:
        raise ValueError(f"periodic interval {seconds!r}: whole seconds above 0")
    if s < 60 and 60 % s == 0:
        return f"* * * * * */{s}"
    if s < 3600 and s % 60 == 0 and 60 % (s // 60) == 0:
        return f"*/{s // 60} * * * *"
    if s < 86400 and s % 3600 == 0 and 24 % (s // 3600) == 0:
        return f"0 */{s // 3600} * * *"
    if s % 86400 == 0:
        return f"0 0 */{s // 86400} * *"
    raise ValueError(
        f"periodic interval {seconds!r} s: on PostgreSQL it must divide a minute (1-30 s), an hour "
        "(whole minutes) or a day (whole hours), or be whole days"
    )


class _Retry:
    """procrastinate's retry strategy from :class:`~garrison.jobs.JobOptions`: ``max_attempts`` runs in
    all (procrastinate's ``attempts`` counts the runs before this one)."""

    def __init__(self, options: JobOptions) -> None:
        self.options = options

    def strategy(self) -> Any:
        from procrastinate import BaseRetryStrategy, RetryDecision

        options = self.options

        class Strategy(BaseRetryStrategy):
            def get_retry_decision(self, *, exception: BaseException, job: Any) -> Any:
                runs = int(job.attempts) + 1
                if runs >= options.max_attempts:
                    return None
                return RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=options.backoff(runs)))

        return Strategy()


class PostgresQueue:
    """The :class:`~garrison.jobs.ManagedQueue` on procrastinate. ``run_jobs=False``: this process only
    enqueues (workers elsewhere run the jobs)."""

    def __init__(self, settings: ServerSettings, store: Store, options: JobOptions, *, run_jobs: bool = True) -> None:
        import procrastinate

        self.settings = settings
        self.store = store
        self.options = options
        self.run_jobs = run_jobs
        self.engine: Engine = engine_of(store, settings)
        # Each schedule's cron line (ValueError here, at the start, for an interval cron cannot say).
        self.crons = [(s, cron_for(s.every)) for s in schedules(options)]
        self._conninfo = conninfo(settings.database_url)
        prepare(settings.database_url)
        self._producer = procrastinate.App(
            connector=procrastinate.SyncPsycopgConnector(conninfo=self._conninfo, min_size=1, max_size=4)
        )
        self._producer_open = False
        self._producer_lock = threading.Lock()
        self._context = JobContext(store=store, queue=self, settings=settings)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._running: set[int] = set()
        self._running_lock = threading.Lock()
        self._abandoned = False

    # --- producing -------------------------------------------------------------------------------

    def enqueue(
        self, task: str, payload: Mapping[str, Any], *, lock: str | None = None, queueing_lock: str | None = None
    ) -> str:
        from procrastinate.exceptions import AlreadyEnqueued

        if task not in task_table.TASKS:
            raise ValueError(f"unknown task {task!r} (known: {', '.join(sorted(task_table.TASKS))})")
        with self._producer_lock:  # opened at the first job, closed by stop()
            if not self._producer_open:
                self._producer.open()
                self._producer_open = True
        deferrer = self._producer.configure_task(name=task, queue=QUEUE, lock=lock, queueing_lock=queueing_lock)
        for _ in range(5):
            try:
                return str(deferrer.defer(payload=dict(payload)))
            except AlreadyEnqueued:
                waiting = self._producer.job_manager.list_jobs(queueing_lock=queueing_lock, status="todo")
                for job in waiting:
                    return str(job.id)
                # it started between the two statements: the queueing lock is free again
        raise RuntimeError(f"could not queue {task!r}: its queueing lock {queueing_lock!r} keeps changing hands")

    def counts(self) -> JobCounts:
        found: dict[tuple[str, str], int] = {}
        q = text(
            "SELECT task_name, status::text, count(*) FROM procrastinate_jobs WHERE queue_name = :q "
            "GROUP BY task_name, status"
        )
        with self.engine.connect() as conn:
            for task, status, n in conn.execute(q, {"q": QUEUE}):
                key = (str(task), STATES[status])
                found[key] = found.get(key, 0) + int(n)
        return JobCounts(found)

    def job(self, job_id: str) -> JobInfo | None:
        if not job_id.isdigit():
            return None
        q = text("SELECT task_name, status::text AS status, attempts FROM procrastinate_jobs WHERE id = :id")
        with self.engine.connect() as conn:
            r = conn.execute(q, {"id": int(job_id)}).first()
            if r is None:
                return None
            error = job_store.last_error(conn, job_id)
        # procrastinate counts a run when it ends (retried or finished): add the one going on.
        runs = int(r.attempts) + (1 if STATES[r.status] == "running" else 0)
        return JobInfo(job_id, r.task_name, STATES[r.status], runs, error)

    # --- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        if not self.run_jobs or self._thread is not None:
            return
        self._ready.clear()
        self._abandoned = False
        self._thread = threading.Thread(target=self._serve, name="garrison-jobs-pg", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the PostgreSQL job worker did not start within 30 s")
        log.info("job queue: procrastinate worker, %d at once", self.options.concurrency)

    def stop(self, grace: float = 30.0) -> None:
        """Also closes the producer's connections (a later :meth:`enqueue` opens them again)."""
        with self._producer_lock:
            if self._producer_open:
                self._producer.close()
                self._producer_open = False
        thread, loop, main = self._thread, self._loop, self._main
        if thread is None or loop is None or main is None:
            return
        loop.call_soon_threadsafe(main.cancel)
        thread.join(max(0.0, grace) + 1.0)
        if thread.is_alive():
            # The handlers still running cannot be interrupted (threads); stop the worker's loop, so that
            # procrastinate never records their end, and put their jobs back for another worker.
            self._abandoned = True
            loop.call_soon_threadsafe(loop.stop)
            with self._running_lock:
                cut = sorted(self._running)
            self._release(cut)
            log.warning("job queue: %d job(s) still running after %.0f s left queued: %s", len(cut), grace, cut)
        self._thread = self._loop = self._main = None
        log.info("job queue stopped")

    def _release(self, job_ids: list[int]) -> None:
        """Back to ``todo`` without counting a run (their worker is going away and cannot finish them)."""
        if not job_ids:
            return
        q = text(
            "UPDATE procrastinate_jobs SET status = 'todo', worker_id = NULL WHERE id IN :ids AND status = 'doing'"
        ).bindparams(bindparam("ids", expanding=True))
        with self.engine.begin() as conn:
            conn.execute(q, {"ids": job_ids})

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=self.options.concurrency + 2, thread_name_prefix="garrison-job")
        )
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._work())
        except asyncio.CancelledError:  # stopped while it was starting
            pass
        except Exception as e:
            if not self._abandoned:  # (else: stop() stopped the loop on purpose)
                log.error("job queue: the worker stopped: %s", error_text(e))
        finally:
            if self._abandoned:
                # Its tasks never end; kept (not closed, not collected) so that nothing half-done runs
                # or complains while this process, about to exit, finishes.
                _ABANDONED.append(loop)
            else:
                loop.close()

    async def _work(self) -> None:
        import procrastinate

        self._main = asyncio.current_task()
        app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=self._conninfo, min_size=2, max_size=self.options.concurrency + 4
            )
        )
        retry = _Retry(self.options).strategy()
        registered = {
            name: app.task(name=name, queue=QUEUE, pass_context=True, retry=retry)(self._runner(name))
            for name in task_table.TASKS
        }
        for s, cron in self.crons:
            app.periodic(cron=cron, periodic_id=s.periodic_id, lock=s.lock or None, queueing_lock=s.task)(
                registered[s.task]
            )
        async with app.open_async():
            recovery = asyncio.create_task(self._recover_forever(app))
            self._ready.set()
            try:
                await app.run_worker_async(
                    queues=[QUEUE],
                    name="garrison",
                    concurrency=self.options.concurrency,
                    install_signal_handlers=False,
                    update_heartbeat_interval=self.options.heartbeat,
                    stalled_worker_timeout=self.options.stale_after,
                    fetch_job_polling_interval=max(0.5, min(5.0, self.options.heartbeat)),
                )
            except asyncio.CancelledError:
                pass
            finally:
                recovery.cancel()

    def _runner(self, name: str) -> Any:
        def run(context: Any, payload: dict[str, Any] | None = None, timestamp: int | None = None) -> None:
            self._run(name, context, payload or {})

        run.__name__ = f"run_{name}"
        return run

    def _run(self, name: str, context: Any, payload: dict[str, Any]) -> None:
        job_id = int(context.job.id)
        attempt = int(context.job.attempts) + 1
        began = time.monotonic()
        log.info("job %d %s: attempt %d/%d", job_id, name, attempt, self.options.max_attempts)
        with self._running_lock:
            self._running.add(job_id)
        try:
            task_table.handler(name)(self._context, dict(payload))
        except Exception as e:
            error = error_text(e)
            with self.engine.begin() as conn:
                job_store.add_error(conn, str(job_id), name, attempt, error, now_iso())
            if attempt < self.options.max_attempts:
                wait = self.options.backoff(attempt)
                log.warning("job %d %s: attempt %d failed (%s); again in %.0f s", job_id, name, attempt, error, wait)
            else:
                log.error("job %d %s: failed after %d attempt(s): %s", job_id, name, attempt, error)
            raise
        finally:
            with self._running_lock:
                self._running.discard(job_id)
        log.info("job %d %s: done in %.2f s", job_id, name, time.monotonic() - began)

    async def _recover_forever(self, app: Any) -> None:
        """Each heartbeat: take back stalled jobs. Each hour: remove finished jobs (and run errors) older
        than :attr:`~garrison.jobs.JobOptions.keep_days`."""
        purged = -math.inf  # the first round purges (monotonic time may be under an hour)
        while True:
            try:
                await self._recover(app)
                if time.monotonic() - purged > 3600:
                    purged = time.monotonic()
                    await self._purge(app)
            except Exception as e:  # the database is away: the next round tries again
                log.error("job queue upkeep: %s", error_text(e))
            await asyncio.sleep(self.options.heartbeat)

    async def _purge(self, app: Any) -> None:
        hours = max(1, int(self.options.keep_days * 24))
        await app.job_manager.delete_old_jobs(
            nb_hours=hours, queue=QUEUE, include_failed=True, include_cancelled=True, include_aborted=True
        )
        before = iso_of(datetime.now(UTC) - timedelta(hours=hours))

        def errors() -> int:
            with self.engine.begin() as conn:
                return job_store.purge_errors(conn, before)

        await asyncio.to_thread(errors)

    async def _recover(self, app: Any) -> None:
        """Queue again (or fail, after their last attempt) the jobs of workers whose heartbeat stopped."""
        from procrastinate.jobs import Status

        stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=self.options.stale_after)
        for job in stalled:
            if job.queue != QUEUE:
                continue
            runs = int(job.attempts) + 1
            error = f"its worker died or hung: no heartbeat for {self.options.stale_after:g} s (attempt {runs})"
            try:
                if runs >= self.options.max_attempts:
                    await app.job_manager.finish_job(job=job, status=Status.FAILED, delete_job=False)
                else:
                    await app.job_manager.retry_job(job)
            except Exception as e:  # another worker took it back first
                log.debug("job %s: taken back by another worker (%s)", job.id, error_text(e))
                continue
            await asyncio.to_thread(self._note, str(job.id), job.task_name, runs, error)
            log.warning(
                "job %s %s: %s; %s",
                job.id,
                job.task_name,
                error,
                "failed" if runs >= self.options.max_attempts else "queued again",
            )

    def _note(self, job_id: str, task: str, attempt: int, error: str) -> None:
        with self.engine.begin() as conn:
            job_store.add_error(conn, job_id, task, attempt, error, now_iso())
