"""Every task a queue may run: name → ``module:function`` of its handler, imported when first run (so
a queue does not load the scanners until a scan job arrives); and the tasks both queues queue on a
schedule (:func:`schedules`)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from garrison.jobs import Handler, JobOptions

TASKS: dict[str, str] = {
    # scan one image reference (pull once, digest-verified; store SBOM, vulnerabilities, secrets, tags)
    "scan_image": "garrison.services.registry:run_scan_job",
    # re-match every stored SBOM against the current advisory database (no registry traffic)
    "rescan_all": "garrison.services.registry:run_rescan_job",
    # deliver one notification (webhook, Slack) with retries
    "notify": "garrison.services.notify:run_delivery_job",
    # assess a posted snapshot of a cluster (recommendations, score)
    "assess_cluster": "garrison.services.clusters:run_assessment_job",
    # delete sent and failed notification deliveries older than delivery_retention_days
    "purge_deliveries": "garrison.services.notify:run_purge_job",
}

#: The periodic rescan's task (and its queueing lock: one waiting at most), and its lock: the one
#: services.registry's rescans take, so that two rescans never run at once.
RESCAN_TASK = "rescan_all"
RESCAN_LOCK = "rescan"
#: The periodic purge of old notification deliveries.
PURGE_TASK = "purge_deliveries"


@dataclass(frozen=True)
class Schedule:
    """A task queued every ``every`` seconds, with ``{}`` as its payload and itself as its queueing lock
    (at most one waits, however long the queue is down or busy)."""

    task: str
    every: float
    #: Its lock ("" none): the periodic rescan shares the asked-for rescans' lock.
    lock: str
    #: procrastinate's name of the schedule (one deferral per tick, across every worker).
    periodic_id: str


def schedules(options: JobOptions) -> tuple[Schedule, ...]:
    """The periodic jobs ``options`` asks for (an interval of 0: none of that task)."""
    every = (
        Schedule(RESCAN_TASK, options.rescan_interval, RESCAN_LOCK, "garrison-rescan"),
        Schedule(PURGE_TASK, options.purge_interval, "", "garrison-purge-deliveries"),
    )
    return tuple(s for s in every if s.every > 0)


def handler(task: str) -> Handler:
    """The handler of ``task``; KeyError for an unknown task name."""
    module, _, name = TASKS[task].partition(":")
    fn: Handler = getattr(importlib.import_module(module), name)
    return fn
