"""Every task a queue may run: name → ``module:function`` of its handler, imported when first run (so
a queue does not load the scanners until a scan job arrives)."""

from __future__ import annotations

import importlib

from garrison.jobs import Handler

TASKS: dict[str, str] = {
    # scan one image reference (pull once, digest-verified; store SBOM, vulnerabilities, secrets, tags)
    "scan_image": "garrison.services.registry:run_scan_job",
    # re-match every stored SBOM against the current advisory database (no registry traffic)
    "rescan_all": "garrison.services.registry:run_rescan_job",
    # deliver one notification (webhook, Slack) with retries
    "notify": "garrison.services.notify:run_delivery_job",
    # assess a posted snapshot of a cluster (recommendations, score)
    "assess_cluster": "garrison.services.clusters:run_assessment_job",
}


def handler(task: str) -> Handler:
    """The handler of ``task``; KeyError for an unknown task name."""
    module, _, name = TASKS[task].partition(":")
    fn: Handler = getattr(importlib.import_module(module), name)
    return fn
