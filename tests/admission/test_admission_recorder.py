"""The decision recorder: decisions written many to a transaction by its thread, in order, none lost;
``flush`` waits for them; a full queue writes before it answers."""

from __future__ import annotations

import threading

import pytest
from tests.server.conftest import Server

from garrison.services.admission import DecisionRecorder
from garrison.store.admission import DecisionFilter, DecisionIn
from garrison.store.records import now_iso

pytestmark = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)


def _decision(i: int) -> DecisionIn:
    return DecisionIn(
        now_iso(),
        "prod",
        "shop",
        "Pod",
        f"p{i}",
        "CREATE",
        "admin",
        i % 2 == 0,
        "enforce",
        (),
        (),
        "",
        f"uid-{i}",
        False,
        "",
    )


def _names(server: Server) -> list[str]:
    with server.store.transaction() as tx:
        page = tx.admission.list(DecisionFilter(), 1000, 0)
    return [d.name for d in page.items]


def test_concurrent_decisions_are_all_written(server: Server) -> None:
    recorder = DecisionRecorder(server.store, batch=7)

    def submit(k: int) -> None:
        for i in range(50):
            recorder.record(_decision(k * 100 + i))

    threads = [threading.Thread(target=submit, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert recorder.flush()
    names = _names(server)
    assert sorted(names) == sorted(f"p{k * 100 + i}" for k in range(4) for i in range(50))
    recorder.close()
    recorder.record(_decision(999))  # after close: written at once
    assert "p999" in _names(server)


def test_a_full_queue_writes_before_answering(server: Server) -> None:
    recorder = DecisionRecorder(server.store, capacity=0)
    recorder.record(_decision(1))
    assert _names(server) == ["p1"], "written by the caller, without a flush"
