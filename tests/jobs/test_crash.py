"""Stopping a real ``garrison server worker`` process with SIGTERM: the running job finishes, nothing new
is taken, and what it had not started stays queued for the next worker. (SIGKILL in the middle of a job
is tested with the real scan task in :mod:`tests.jobs.test_reliability`.)"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.jobs.conftest import QueueFactory, Worker
from tests.jobs.test_queue import keys, runs, wait_for
from tests.server.conftest import wait_idle

from garrison.store.repos import SqlStore

pytestmark = pytest.mark.slow


def test_sigterm_lets_the_running_job_finish(
    make_queue: QueueFactory, store: SqlStore, workers: Callable[..., Worker]
) -> None:
    producer = make_queue(run_jobs=False)
    w = workers("--concurrency", "1", "--grace", "20")
    job = producer.enqueue("test_sleep", {"key": "t", "seconds": 1.0})
    waiting = producer.enqueue("test_record", {"key": "later"}, lock="held")
    wait_for(lambda: runs(store, "test.start"))
    assert w.terminate() == 0
    info, later = producer.job(job), producer.job(waiting)
    assert info is not None and info.status == "done" and keys(store) == ["t"]
    assert later is not None and later.status == "queued"
    assert "SIGTERM: finishing running jobs" in w.stderr() and "worker stopped" in w.stderr()
    # Whatever it had not started stays queued for the next worker, which runs it.
    nxt = make_queue()
    nxt.start()
    wait_idle(nxt, 30)
    later = producer.job(waiting)
    assert later is not None and later.status == "done"
    assert keys(store).count("later") == 1
