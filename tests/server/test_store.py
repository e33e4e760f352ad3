"""The store: migrations from an empty database, tokens hashed at rest, the alerts upsert."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from tests.server.conftest import Server

from garrison.services import server as svc
from garrison.store import tables
from garrison.store.db import HEAD, current_revision, migrate, open_engine
from garrison.store.records import AlertFilter, AlertIn, now_iso
from garrison.store.repos import SqlStore


def test_sqlite_file_and_folder_are_created(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "fresh.db"
    engine = open_engine(f"sqlite:///{db}")
    migrate(engine)
    assert db.is_file() and current_revision(engine) == HEAD
    engine.dispose()


def test_migrations_from_empty_create_the_declared_tables(database_url: str) -> None:
    engine = open_engine(database_url)
    assert current_revision(engine) is None
    migrate(engine)
    assert current_revision(engine) == HEAD
    insp = inspect(engine)
    assert set(insp.get_table_names()) == {*tables.metadata.tables, "alembic_version"}
    for name, table in tables.metadata.tables.items():
        assert [c["name"] for c in insp.get_columns(name)] == [c.name for c in table.columns], name
        declared = {tuple(ix.columns.keys()) for ix in table.indexes}
        migrated = {tuple(ix["column_names"]) for ix in insp.get_indexes(name)}
        assert declared <= migrated, name
        uniques = {tuple(u["column_names"]) for u in insp.get_unique_constraints(name)}
        assert {(c.name,) for c in table.columns if c.unique} <= uniques, name
    migrate(engine)  # a second run is a no-op
    assert current_revision(engine) == HEAD
    engine.dispose()


def test_tokens_are_hashed_at_rest(server: Server) -> None:
    r = server.client.post(
        "/api/v1/users", json={"name": "carol", "role": "security-reader"}, headers=server.headers("admin")
    )
    secret = r.json()["token"]["secret"]
    assert secret.startswith(svc.TOKEN_PREFIX) and len(secret) > 40
    every = [*server.tokens.values(), secret]
    # Every row of every table, as text: no token, nor its random part, is anywhere.
    with server.store.engine.connect() as conn:
        dump = repr([list(conn.execute(select(table))) for table in tables.metadata.sorted_tables])
        stored = {h for (h,) in conn.execute(select(tables.tokens.c.token_hash))}
        prefixes = {p for (p,) in conn.execute(select(tables.tokens.c.prefix))}
    assert hashlib.sha256(secret.encode()).hexdigest() in dump  # the dump holds the data
    for token in every:
        assert token not in dump and token[len(svc.TOKEN_PREFIX) :] not in dump
    assert stored == {hashlib.sha256(t.encode()).hexdigest() for t in every}
    assert all(len(p) == svc.SHOWN for p in prefixes)
    if server.kind == "sqlite":  # and not in the file's bytes either (WAL flushed in by closing)
        server.store.engine.dispose()
        path = Path(str(server.store.engine.url.database))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in raw
        assert not [t for t in every if t.encode() in raw or t[len(svc.TOKEN_PREFIX) :].encode() in raw]
    # Still usable: the server compares hashes.
    me = server.client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and "secret" not in me.text and secret not in me.text


def test_alert_fold_adds_counts_and_widens_times(database_url: str) -> None:
    engine = open_engine(database_url)
    migrate(engine)
    store = SqlStore(engine)

    def alert(count: int, first: str, last: str) -> AlertIn:
        return AlertIn(
            "fp1", "R", "HIGH", "Warning", "k8s_audit", "out", "c", "ns", {"namespace": "ns"}, count, first, last
        )

    with store.transaction() as tx:
        assert tx.alerts.fold(alert(2, "2026-01-02T00:00:00.000000Z", "2026-01-03T00:00:00.000000Z"), now_iso()).new
        assert not tx.alerts.fold(alert(3, "2026-01-01T00:00:00.000000Z", "2026-01-02T12:00:00.000000Z"), now_iso()).new
        assert not tx.alerts.fold(alert(1, "2026-01-05T00:00:00.000000Z", "2026-01-06T00:00:00.000000Z"), now_iso()).new
        (a,) = tx.alerts.list(AlertFilter(), 10, 0).items
    assert (a.count, a.first_seen, a.last_seen) == (6, "2026-01-01T00:00:00.000000Z", "2026-01-06T00:00:00.000000Z")
    engine.dispose()


def test_fold_many_folds_a_batch_in_one_go_and_a_fingerprint_twice_one_at_a_time(server: Server) -> None:
    """A batch's alerts are folded together (results in the batch's order, whatever the lock order); an
    alert twice in one batch (two aggregates with one fingerprint) adds both counts."""

    def alert(fp: str, count: int) -> AlertIn:
        t = "2026-01-02T00:00:00.000000Z"
        return AlertIn(fp, "R", "HIGH", "Warning", "k8s_audit", "out", "c", "ns", {"namespace": "ns"}, count, t, t)

    with server.store.transaction() as tx:
        first = tx.alerts.fold_many([(alert("fp-b", 1), None), (alert("fp-a", 2), None)], now_iso())
        again = tx.alerts.fold_many(
            [(alert("fp-c", 1), None), (alert("fp-b", 4), None), (alert("fp-c", 5), None)], now_iso()
        )
        stored = {a.fingerprint: a.count for a in tx.alerts.list(AlertFilter(), 10, 0).items}
    assert [f.new for f in first] == [True, True] and first[0].id != first[1].id
    assert [f.new for f in again] == [True, False, False] and again[0].id == again[2].id and again[1].id == first[0].id
    assert stored == {"fp-a": 2, "fp-b": 5, "fp-c": 6}


def test_a_failed_change_leaves_no_audit_entry(server: Server) -> None:
    before = svc.list_audit_log(server.store).total
    r = server.client.post("/api/v1/users", json={"name": "admin", "role": "agent"}, headers=server.headers("admin"))
    assert r.status_code == 409 and "exists" in r.json()["error"]
    assert svc.list_audit_log(server.store).total == before


def test_the_audit_log_is_append_only_in_the_database(server: Server) -> None:
    from sqlalchemy import delete, update
    from sqlalchemy.exc import DBAPIError

    assert svc.list_audit_log(server.store).total > 0
    for stmt in (update(tables.audit_log).values(reason="rewritten"), delete(tables.audit_log)):
        with pytest.raises(DBAPIError, match="append-only"), server.store.engine.begin() as conn:
            conn.execute(stmt)
    entries = svc.list_audit_log(server.store)
    assert entries.total > 0 and all(e.reason != "rewritten" for e in entries.items)


def test_downgrade_to_empty_and_up_again(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    import garrison.store.db as db

    engine = open_engine(database_url)
    migrate(engine)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "alembic"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine)
    assert current_revision(engine) == HEAD and "audit_log" in inspect(engine).get_table_names()
    engine.dispose()
