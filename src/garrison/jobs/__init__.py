"""Jobs: what the server does in the background (scan on push, rescans, notifications, assessments).

A job is a task name from :data:`garrison.jobs.tasks.TASKS` and a JSON payload. Producers (routers,
services) only see :class:`Queue`; two implementations run the same handlers: the inline queue (one
process, the server's own database) and a real queue on PostgreSQL for many workers on many machines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from garrison.services.settings import ServerSettings
    from garrison.store.repos import Store


class Queue(Protocol):
    def enqueue(self, task: str, payload: Mapping[str, Any], *, lock: str | None = None) -> str:
        """Queue ``task`` with its JSON ``payload`` and return the job's id. Jobs sharing a ``lock`` never
        run at the same time (one image is never scanned twice at once)."""
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


class ManagedQueue(Queue, Protocol):
    """A queue the server or a worker process owns: :meth:`start` begins running jobs (if this process
    runs any), :meth:`stop` finishes the running ones within ``grace`` seconds and leaves the rest (and
    any it had to cut short) queued for the next process."""

    def start(self) -> None: ...
    def stop(self, grace: float = 30.0) -> None: ...


def open_queue(settings: ServerSettings, store: Store, *, run_jobs: bool = True) -> ManagedQueue:
    """The queue for ``settings.database_url``: inline on SQLite (jobs run in this process), the
    PostgreSQL queue otherwise (``run_jobs``: this process works too, as ``garrison server worker`` does)."""
    raise NotImplementedError("garrison.jobs.open_queue: not built yet")
