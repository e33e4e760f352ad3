"""The queue's mechanics on each database (the inline queue on SQLite; on PostgreSQL the queue that
``open_queue`` gives there), with the test tasks of :mod:`tests.jobs.handlers` doing real work in the
store: every job runs, once; a lock keeps two jobs apart; failures are retried, then kept with their
error; a duplicate still waiting is not added; a restart loses nothing; a graceful stop leaves the
unfinished queued; the periodic rescan and purge are queued; jobs are counted by task and state; old
finished jobs are removed."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.jobs.conftest import FAST, QueueFactory
from tests.server.conftest import wait_idle

from garrison.jobs import ManagedQueue
from garrison.services.settings import ServerSettings
from garrison.store.repos import SqlStore


def runs(store: SqlStore, action: str = "test.end") -> list[tuple[str, int, str]]:
    """(key, pid, at) of every ``action`` the test handlers appended, oldest first."""
    with store.transaction() as tx:
        entries = tx.audit.list(100_000, 0).items
    return sorted(
        ((e.target_id, int(e.detail["pid"]), e.at) for e in entries if e.action == action), key=lambda r: r[2]
    )


def keys(store: SqlStore, action: str = "test.end") -> list[str]:
    return sorted(k for k, _, _ in runs(store, action))


def wait_for(what: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := what()):
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)
    return found


def test_every_job_runs_once(make_queue: QueueFactory, store: SqlStore) -> None:
    q = make_queue()
    ids = [q.enqueue("test_record", {"key": f"k{n:03}"}) for n in range(40)]
    assert len(set(ids)) == 40
    q.start()
    counts = wait_idle(q, 60)
    assert counts["done"] == 40 and counts["failed"] == 0
    assert keys(store) == [f"k{n:03}" for n in range(40)]
    assert all((info := q.job(i)) is not None and info.status == "done" and info.attempts == 1 for i in ids)


def test_jobs_sharing_a_lock_never_overlap(make_queue: QueueFactory, store: SqlStore) -> None:
    q = make_queue(concurrency=4)
    for n in range(8):
        lock = "image-a" if n % 2 == 0 else "image-b"
        q.enqueue("test_sleep", {"key": f"{lock}/{n}", "seconds": 0.15}, lock=lock)
    q.start()
    assert wait_idle(q, 60)["done"] == 8
    events = sorted(
        [(at, "start", k) for k, _, at in runs(store, "test.start")] + [(at, "end", k) for k, _, at in runs(store)]
    )
    inside: dict[str, int] = {"image-a": 0, "image-b": 0}
    for _, kind, key in events:
        lock = key.split("/")[0]
        inside[lock] += 1 if kind == "start" else -1
        assert 0 <= inside[lock] <= 1, f"two jobs of {lock} ran at once"


def test_a_failing_job_is_retried_then_succeeds(make_queue: QueueFactory, store: SqlStore) -> None:
    q = make_queue()
    job = q.enqueue("test_flaky", {"key": "f", "fail": 2})
    q.start()
    wait_idle(q, 60)
    info = q.job(job)
    assert info is not None and info.status == "done" and info.attempts == 3
    assert "flaky failure 2 of 2" in info.last_error
    assert keys(store, "test.start") == ["f", "f", "f"] and keys(store) == ["f"]


def test_a_job_failing_every_time_is_failed_with_its_error(make_queue: QueueFactory, store: SqlStore) -> None:
    q = make_queue(max_attempts=3)
    job = q.enqueue("test_boom", {"key": "b"})
    q.start()
    counts = wait_idle(q, 60)
    info = q.job(job)
    assert info is not None and info.status == "failed" and info.attempts == 3
    assert info.last_error == "ValueError: boom: b"
    assert counts["failed"] == 1 and keys(store, "test.start") == ["b", "b", "b"]


def test_unknown_task_is_refused(make_queue: QueueFactory) -> None:
    q = make_queue()
    with pytest.raises(ValueError, match="unknown task 'no_such_task'"):
        q.enqueue("no_such_task", {})
    assert q.counts()["queued"] == 0


def test_a_duplicate_still_waiting_is_not_added(make_queue: QueueFactory, store: SqlStore) -> None:
    q = make_queue()
    first = q.enqueue("test_record", {"key": "d"}, queueing_lock="scan:d")
    assert q.enqueue("test_record", {"key": "d"}, queueing_lock="scan:d") == first
    other = q.enqueue("test_record", {"key": "e"}, queueing_lock="scan:e")
    assert other != first
    q.start()
    wait_idle(q, 60)
    assert keys(store) == ["d", "e"]
    # Once the first has run, the same queueing lock queues a new job.
    again = q.enqueue("test_record", {"key": "d"}, queueing_lock="scan:d")
    assert again not in (first, other)
    wait_idle(q, 60)
    assert keys(store) == ["d", "d", "e"]


def test_a_restart_loses_nothing_and_doubles_nothing(make_queue: QueueFactory, store: SqlStore) -> None:
    producer = make_queue(run_jobs=False)  # a server process that only enqueues
    for n in range(10):
        producer.enqueue("test_record", {"key": f"a{n}"})
    first = make_queue()
    first.start()
    wait_idle(first, 60)
    first.stop()
    for n in range(10):
        producer.enqueue("test_record", {"key": f"b{n}"})
    second = make_queue()  # the next run of the server
    second.start()
    wait_idle(second, 60)
    assert keys(store) == sorted([f"a{n}" for n in range(10)] + [f"b{n}" for n in range(10)])


def test_graceful_stop_finishes_short_jobs_and_leaves_long_ones_queued(
    make_queue: QueueFactory, store: SqlStore
) -> None:
    q = make_queue(concurrency=2)
    short = q.enqueue("test_sleep", {"key": "short", "seconds": 0.3})
    long = q.enqueue("test_sleep", {"key": "long", "seconds": 6})
    q.start()
    wait_for(lambda: len(runs(store, "test.start")) == 2)
    q.stop(grace=1.5)
    short_info, long_info = q.job(short), q.job(long)
    assert short_info is not None and short_info.status == "done"
    assert long_info is not None and long_info.status == "queued" and long_info.attempts == 0
    assert keys(store) == ["short"]


def test_periodic_rescan_is_queued(make_queue: QueueFactory, store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from garrison.jobs.tasks import TASKS

    monkeypatch.setitem(TASKS, "rescan_all", "tests.jobs.handlers:noop")
    q: ManagedQueue = make_queue(rescan_interval=1)
    q.start()
    wait_for(lambda: q.counts()["done"] >= 2, timeout=30)
    q.stop()
    # One waits at most: a queueing lock keeps the periodic job from piling up.
    assert q.counts()["queued"] <= 1


def test_a_job_left_queued_by_a_stop_is_not_recorded_by_its_old_run(make_queue: QueueFactory, store: SqlStore) -> None:
    q = make_queue(concurrency=1)
    job = q.enqueue("test_sleep", {"key": "slow", "seconds": 1.5})
    q.start()
    wait_for(lambda: runs(store, "test.start"))
    q.stop(grace=0)
    wait_for(lambda: runs(store))  # the old run got to its end in its thread…
    time.sleep(0.5)
    info = q.job(job)
    assert info is not None and info.status == "queued" and info.attempts == 0  # …and that changed nothing
    nxt = make_queue()
    nxt.start()
    wait_idle(nxt, 30)
    info = q.job(job)
    assert info is not None and info.status == "done" and info.attempts == 1


def test_periodic_purge_of_deliveries_is_queued(make_queue: QueueFactory, store: SqlStore) -> None:
    """The real ``purge_deliveries`` handler, on its schedule (each second here; hourly by default)."""
    q: ManagedQueue = make_queue(purge_interval=1)
    q.start()
    wait_for(lambda: q.counts().by_task[("purge_deliveries", "done")] >= 2, timeout=30)
    q.stop()
    counts = q.counts()
    assert counts.by_task[("purge_deliveries", "failed")] == 0
    assert counts.by_task[("purge_deliveries", "queued")] <= 1  # its queueing lock: one waits at most
    assert counts.by_task[("rescan_all", "done")] == 0  # its interval is 0 here: never


def test_jobs_are_counted_by_task_and_state(make_queue: QueueFactory) -> None:
    from garrison.jobs import STATES
    from garrison.jobs.tasks import TASKS

    q = make_queue(max_attempts=1)
    for n in range(3):
        q.enqueue("test_record", {"key": f"c{n}"})
    q.enqueue("test_boom", {"key": "x"})
    queued = q.counts()
    assert queued["queued"] == 4 and queued.by_task[("test_record", "queued")] == 3
    q.start()
    counts = wait_idle(q, 60)
    assert dict(counts) == {"queued": 0, "running": 0, "done": 3, "failed": 1}
    assert counts.by_task[("test_record", "done")] == 3 and counts.by_task[("test_boom", "failed")] == 1
    # every task in every state, 0 included; the states' totals are the sums over the tasks
    assert set(counts.by_task) >= {(task, state) for task in TASKS for state in STATES}
    for state in STATES:
        assert counts[state] == sum(n for (_, s), n in counts.by_task.items() if s == state)


def test_finished_jobs_older_than_keep_days_are_removed(store: SqlStore, settings: ServerSettings) -> None:
    """The inline queue's own upkeep (its first round, then hourly) deletes ``done`` and ``failed`` jobs
    that ended more than ``keep_days`` ago; queued ones and recent ones stay. (procrastinate's queue
    does the same with its ``delete_old_jobs``.)"""
    from dataclasses import replace

    from sqlalchemy import update

    from garrison.jobs.inline import InlineQueue
    from garrison.store.jobs import jobs

    q = InlineQueue(settings, store, replace(FAST, max_attempts=1))
    ids = [int(q.enqueue("test_record", {"key": f"o{n}"})) for n in range(3)]
    failed = int(q.enqueue("test_boom", {"key": "old"}))
    q.start()
    wait_idle(q, 60)
    q.stop()
    waiting = int(q.enqueue("test_record", {"key": "waits"}))
    with store.engine.begin() as conn:
        old = [*ids[:2], failed, waiting]
        conn.execute(update(jobs).where(jobs.c.id.in_(old)).values(finished_at="2020-01-01T00:00:00.000000Z"))
    again = InlineQueue(settings, store, replace(FAST, max_attempts=1), run_jobs=True)
    try:
        again.start()
        wait_for(lambda: again.job(str(ids[0])) is None, timeout=30)
        wait_idle(again, 60)
    finally:
        again.stop()
    assert [again.job(str(i)) is None for i in (*ids, failed)] == [True, True, False, True]
    kept = again.job(str(waiting))  # it was queued (its finished_at aside): it ran
    assert kept is not None and kept.status == "done"
