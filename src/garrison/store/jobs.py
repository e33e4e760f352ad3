"""The inline job queue's table (the server's own database: SQLite, or PostgreSQL without procrastinate)
and its repository; the errors of the PostgreSQL queue's failed runs.

One row per job, kept after it ends (``done`` or ``failed``, with its last error) until
:meth:`SqlJobs.purge` removes old ones. A job is claimed by one worker at a time (``worker`` and
``heartbeat`` say who and whether it still lives); jobs that share a ``lock`` are never ``running`` at
the same time, and a ``queueing_lock`` keeps at most one such job waiting.

Claiming is one transaction that reads and then writes: on SQLite the store's transactions begin
``IMMEDIATE`` (one writer at a time), which is what makes the lock check and the claim atomic across
threads and processes. Created by migration ``0004``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import aliased

from garrison.store.records import record_of
from garrison.store.tables import TIME, metadata

#: The PostgreSQL advisory lock that serializes claims (an arbitrary constant: "garrison jobs").
CLAIM_LOCK = 0x6A6F6273


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    # Jobs with the same non-empty lock never run at once (one image is never scanned twice at once).
    Column("lock", String(256), nullable=False, default=""),
    # At most one queued job per non-empty queueing lock: a duplicate still waiting is not added.
    Column("queueing_lock", String(256), nullable=False, default=""),
    Column("status", String(16), nullable=False),
    # Runs started so far (a run cut short by a crash counts).
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    # Not claimed before this time (retries wait with a growing backoff).
    Column("run_after", String(TIME), nullable=False),
    Column("last_error", Text, nullable=False, default=""),
    Column("created_at", String(TIME), nullable=False),
    Column("started_at", String(TIME), nullable=False, default=""),
    Column("finished_at", String(TIME), nullable=False, default=""),
    # Who runs it ("host:pid:nonce", "" while queued) and when that worker last said it lives.
    Column("worker", String(128), nullable=False, default=""),
    Column("heartbeat", String(TIME), nullable=False, default=""),
    Index("ix_jobs_status_run_after", "status", "run_after"),
    Index("ix_jobs_lock", "lock"),
    Index("ix_jobs_queueing_lock", "queueing_lock"),
    Index("ix_jobs_task_created_at", "task", "created_at"),
)


# Every failed run's error, for the PostgreSQL queue (procrastinate keeps no error text): the job's
# procrastinate id, the run (1 for the first) and the error; the inline queue keeps its last error on the row.
job_errors = Table(
    "job_errors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(32), nullable=False, index=True),
    Column("task", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", String(TIME), nullable=False),
    Column("error", Text, nullable=False),
)


def add_error(conn: Connection, job_id: str, task: str, attempt: int, error: str, at: str) -> None:
    conn.execute(insert(job_errors).values(job_id=job_id, task=task, attempt=attempt, at=at, error=error))


def last_error(conn: Connection, job_id: str) -> str:
    c = job_errors.c
    q = select(c.error).where(c.job_id == job_id).order_by(c.attempt.desc(), c.id.desc()).limit(1)
    found = conn.execute(q).scalar_one_or_none()
    return "" if found is None else str(found)


def purge_errors(conn: Connection, before: str) -> int:
    return int(conn.execute(delete(job_errors).where(job_errors.c.at < before)).rowcount)


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    task: str
    payload: dict[str, Any]
    lock: str
    queueing_lock: str
    status: JobStatus
    attempts: int
    max_attempts: int
    run_after: str
    last_error: str
    created_at: str
    started_at: str
    finished_at: str
    worker: str
    heartbeat: str


def _job(r: Any) -> Job:
    return record_of(Job, r, id=int, payload=dict, status=JobStatus, attempts=int, max_attempts=int)


class JobRepository(Protocol):
    def add(
        self, task: str, payload: Mapping[str, Any], lock: str, queueing_lock: str, max_attempts: int, at: str
    ) -> tuple[int, bool]:
        """(id, True) for the new job; (id of the waiting one, False) when a job with this non-empty
        ``queueing_lock`` is still queued (nothing added)."""
        ...

    def claim(self, worker: str, at: str) -> Job | None:
        """The oldest queued job due at ``at`` whose lock no running job holds, now ``running`` for
        ``worker`` (attempts counted); None when there is none."""
        ...

    def finish(self, job_id: int, worker: str, at: str) -> bool:
        """``done``, if ``worker`` still holds it (False when it was taken away meanwhile)."""
        ...

    def retry(self, job_id: int, worker: str, error: str, run_after: str) -> bool: ...
    def fail(self, job_id: int, worker: str, error: str, at: str) -> bool: ...
    def release(self, job_id: int, worker: str) -> bool:
        """Back to ``queued`` without counting the attempt (a graceful stop that could not wait for it)."""
        ...

    def beat(self, worker: str, at: str) -> int:
        """Refresh the heartbeat of every job ``worker`` runs; how many."""
        ...

    def running_workers(self) -> dict[str, str]:
        """worker → its latest heartbeat, for the workers that hold running jobs."""
        ...

    def recover(self, workers: Iterable[str], at: str) -> tuple[list[int], list[int]]:
        """Jobs left ``running`` by ``workers`` (dead): queued again, or failed when they have had all
        their attempts. The ids (requeued, failed)."""
        ...

    def get(self, job_id: int) -> Job | None: ...
    def counts(self) -> dict[tuple[str, JobStatus], int]:
        """Jobs by (task, status), for the combinations that have any."""
        ...

    def latest(self, task: str) -> Job | None:
        """The newest job of ``task`` (any status)."""
        ...

    def next_due(self) -> str | None:
        """The earliest ``run_after`` of a queued job."""
        ...

    def purge(self, before: str) -> int:
        """Delete ``done`` and ``failed`` jobs that finished before ``before``; how many."""
        ...


class SqlJobs:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(
        self, task: str, payload: Mapping[str, Any], lock: str, queueing_lock: str, max_attempts: int, at: str
    ) -> tuple[int, bool]:
        c = jobs.c
        if queueing_lock:
            waiting = select(c.id).where(c.queueing_lock == queueing_lock, c.status == JobStatus.QUEUED.value)
            found = self.conn.execute(waiting.limit(1)).first()
            if found is not None:
                return int(found.id), False
        pk = self.conn.execute(
            insert(jobs).values(
                task=task,
                payload=dict(payload),
                lock=lock,
                queueing_lock=queueing_lock,
                status=JobStatus.QUEUED.value,
                attempts=0,
                max_attempts=max_attempts,
                run_after=at,
                last_error="",
                created_at=at,
                started_at="",
                finished_at="",
                worker="",
                heartbeat="",
            )
        ).inserted_primary_key
        assert pk is not None
        return int(pk[0]), True

    def claim(self, worker: str, at: str) -> Job | None:
        c = jobs.c
        if self.conn.dialect.name == "postgresql":
            # Claims one at a time (as SQLite's IMMEDIATE transactions do), so that the lock check below
            # and the update cannot interleave with another worker's under READ COMMITTED.
            self.conn.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK)))
        other = aliased(jobs)
        held = exists().where(other.c.lock == c.lock, other.c.status == JobStatus.RUNNING.value)
        q = (
            select(c.id)
            .where(c.status == JobStatus.QUEUED.value, c.run_after <= at, (c.lock == "") | ~held)
            .order_by(c.run_after, c.id)
            .limit(1)
        )
        row = self.conn.execute(q).first()
        if row is None:
            return None
        done = self.conn.execute(
            update(jobs)
            .where(c.id == row.id, c.status == JobStatus.QUEUED.value)
            .values(
                status=JobStatus.RUNNING.value,
                attempts=c.attempts + 1,
                started_at=at,
                worker=worker,
                heartbeat=at,
            )
        )
        return self.get(int(row.id)) if done.rowcount == 1 else None

    def _mine(self, job_id: int, worker: str) -> Any:
        c = jobs.c
        return and_(c.id == job_id, c.worker == worker, c.status == JobStatus.RUNNING.value)

    def finish(self, job_id: int, worker: str, at: str) -> bool:
        values = dict(status=JobStatus.DONE.value, finished_at=at, worker="", heartbeat="")
        return self.conn.execute(update(jobs).where(self._mine(job_id, worker)).values(**values)).rowcount == 1

    def retry(self, job_id: int, worker: str, error: str, run_after: str) -> bool:
        values = dict(status=JobStatus.QUEUED.value, last_error=error, run_after=run_after, worker="", heartbeat="")
        return self.conn.execute(update(jobs).where(self._mine(job_id, worker)).values(**values)).rowcount == 1

    def fail(self, job_id: int, worker: str, error: str, at: str) -> bool:
        values = dict(status=JobStatus.FAILED.value, last_error=error, finished_at=at, worker="", heartbeat="")
        return self.conn.execute(update(jobs).where(self._mine(job_id, worker)).values(**values)).rowcount == 1

    def release(self, job_id: int, worker: str) -> bool:
        c = jobs.c
        values = dict(status=JobStatus.QUEUED.value, attempts=c.attempts - 1, worker="", heartbeat="")
        return self.conn.execute(update(jobs).where(self._mine(job_id, worker)).values(**values)).rowcount == 1

    def beat(self, worker: str, at: str) -> int:
        c = jobs.c
        q = update(jobs).where(c.worker == worker, c.status == JobStatus.RUNNING.value).values(heartbeat=at)
        return int(self.conn.execute(q).rowcount)

    def running_workers(self) -> dict[str, str]:
        c = jobs.c
        q = select(c.worker, func.max(c.heartbeat)).where(c.status == JobStatus.RUNNING.value).group_by(c.worker)
        return {str(w): str(h) for w, h in self.conn.execute(q)}

    def recover(self, workers: Iterable[str], at: str) -> tuple[list[int], list[int]]:
        c = jobs.c
        dead = sorted(set(workers))
        if not dead:
            return [], []
        left = [
            (int(r.id), int(r.attempts), int(r.max_attempts), str(r.worker))
            for r in self.conn.execute(
                select(c.id, c.attempts, c.max_attempts, c.worker).where(
                    c.status == JobStatus.RUNNING.value, c.worker.in_(dead)
                )
            )
        ]
        requeued: list[int] = []
        failed: list[int] = []
        for job_id, attempts, max_attempts, worker in left:
            error = f"the worker {worker} died while running it (attempt {attempts})"
            if attempts >= max_attempts:
                self.fail(job_id, worker, error, at)
                failed.append(job_id)
            else:
                self.retry(job_id, worker, error, at)
                requeued.append(job_id)
        return requeued, failed

    def get(self, job_id: int) -> Job | None:
        r = self.conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return None if r is None else _job(r)

    def counts(self) -> dict[tuple[str, JobStatus], int]:
        c = jobs.c
        q = select(c.task, c.status, func.count()).group_by(c.task, c.status)
        return {(str(task), JobStatus(s)): int(n) for task, s, n in self.conn.execute(q)}

    def latest(self, task: str) -> Job | None:
        c = jobs.c
        r = self.conn.execute(select(jobs).where(c.task == task).order_by(c.created_at.desc(), c.id.desc())).first()
        return None if r is None else _job(r)

    def next_due(self) -> str | None:
        c = jobs.c
        q = select(func.min(c.run_after)).where(c.status == JobStatus.QUEUED.value)
        due = self.conn.execute(q).scalar_one_or_none()
        return None if due is None else str(due)

    def purge(self, before: str) -> int:
        c = jobs.c
        q = delete(jobs).where(c.status.in_([JobStatus.DONE.value, JobStatus.FAILED.value]), c.finished_at < before)
        return int(self.conn.execute(q).rowcount)
