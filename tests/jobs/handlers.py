"""Task handlers for the queue's tests: real work in the real store (audit-log rows, which are
append-only, so a run that happened can never be taken back), registered in ``TASKS`` by the tests (the
table is data) and by :mod:`tests.jobs.run_worker` in worker processes.

Each run appends ``test.start`` and, when it gets to its end, ``test.end`` with the payload's ``key``,
the process id and the attempt's own time, so a test can tell which runs began, which finished, where,
and whether two overlapped.
"""

from __future__ import annotations

import os
import time
from typing import Any

from garrison.jobs import JobContext
from garrison.store.records import now_iso

#: What the tests register: task name → handler.
TEST_TASKS = {
    "test_record": "tests.jobs.handlers:record",
    "test_sleep": "tests.jobs.handlers:sleep",
    "test_flaky": "tests.jobs.handlers:flaky",
    "test_boom": "tests.jobs.handlers:boom",
    "test_noop": "tests.jobs.handlers:noop",
}


def _append(ctx: JobContext, action: str, payload: dict[str, Any]) -> None:
    with ctx.store.transaction() as tx:
        tx.audit.append(now_iso(), "test-job", action, "job", str(payload["key"]), detail={"pid": os.getpid()})


def record(ctx: JobContext, payload: dict[str, Any]) -> None:
    _append(ctx, "test.end", payload)


def sleep(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Start, sleep ``seconds`` (long enough to be killed or cut short), end."""
    _append(ctx, "test.start", payload)
    time.sleep(float(payload.get("seconds", 0.1)))
    _append(ctx, "test.end", payload)


def flaky(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Fails until it has been started ``fail`` times before, then ends."""
    _append(ctx, "test.start", payload)
    with ctx.store.transaction() as tx:
        starts = [e for e in tx.audit.list(1000, 0).items if e.action == "test.start" and e.target_id == payload["key"]]
    if len(starts) <= int(payload["fail"]):
        raise RuntimeError(f"flaky failure {len(starts)} of {payload['fail']}")
    _append(ctx, "test.end", payload)


def boom(ctx: JobContext, payload: dict[str, Any]) -> None:
    _append(ctx, "test.start", payload)
    raise ValueError(f"boom: {payload['key']}")


def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Nothing at all: the queue's own cost."""
