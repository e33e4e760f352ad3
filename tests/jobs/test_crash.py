"""Crashes with real processes: a ``garrison server worker`` killed with SIGKILL in the middle of a job
has that job run again by another worker (the job's first run never finished: nothing is lost, and the
jobs that finished are not run again: nothing is doubled); SIGTERM finishes the running job and stops."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.jobs.conftest import QueueFactory, Worker
from tests.jobs.test_queue import keys, runs, wait_for
from tests.server.conftest import wait_idle

from garrison.store.repos import SqlStore

pytestmark = pytest.mark.slow


def test_sigkill_mid_job_runs_it_again_elsewhere(
    make_queue: QueueFactory, store: SqlStore, workers: Callable[..., Worker]
) -> None:
    producer = make_queue(run_jobs=False)
    done_before = [producer.enqueue("test_record", {"key": f"before{n}"}) for n in range(5)]
    first = workers("--concurrency", "1")
    wait_for(lambda: len(runs(store)) == 5)
    victim = producer.enqueue("test_sleep", {"key": "victim", "seconds": 2.0})
    started = wait_for(lambda: runs(store, "test.start"))
    assert started[0][1] == first.pid
    first.kill()
    second = workers("--concurrency", "2")
    info = wait_for(lambda: (j := producer.job(victim)) is not None and j.status == "done" and j)
    assert info.attempts == 2 and "died" in info.last_error
    starts = runs(store, "test.start")
    assert [(k, pid) for k, pid, _ in starts] == [("victim", first.pid), ("victim", second.pid)]
    assert [(k, pid) for k, pid, _ in runs(store) if k == "victim"] == [("victim", second.pid)]
    # Nothing doubled: the jobs that had finished did not run again.
    assert keys(store) == sorted([f"before{n}" for n in range(5)] + ["victim"])
    assert all((j := producer.job(i)) is not None and j.attempts == 1 for i in done_before)
    assert second.terminate() == 0


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
    assert "finishing running jobs" in w.stderr() and "worker stopped" in w.stderr()
    # Whatever it had not started stays queued for the next worker, which runs it.
    nxt = make_queue()
    nxt.start()
    wait_idle(nxt, 30)
    later = producer.job(waiting)
    assert later is not None and later.status == "done"
    assert keys(store).count("later") == 1
