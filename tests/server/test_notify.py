"""Notifications end to end: targets through the API, :func:`publish` queueing real jobs on the server's
queue, and deliveries posted over real HTTP to a receiver on loopback (``http.server`` in a thread) that
records every request and answers from a script (fail the first N times, 429 with ``Retry-After``, drop
the connection, redirect)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.server.conftest import Server
from tests.server.test_alerts import RECORDED, needs_recorded

from garrison.services import notify, secretbox
from garrison.services.settings import ServerSettings
from garrison.store.notify import DeliveryStatus, notification_deliveries, notification_targets

#: For tests of what does not depend on the database (validation, bodies, HTTP outcomes, retries): SQLite
#: only. What the store does (targets, deliveries and their attempts, changes, deletes) runs on both.
SQLITE_ONLY = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)

SLACK_SECRET = "T0000000/B0000000/sekr1tSlackPathXXXXXXXXX"
HEADER_SECRET = "hook-bearer-5ecret"


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Receiver:
    """A webhook receiver: answers ``script`` in order (an int status, ``(status, headers)``, or
    ``"drop"`` to close the connection unanswered), then 200 for ever."""

    url: str
    script: list[Any] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            with state.lock:
                state.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw)))
                step = state.script.pop(0) if state.script else 200
            if step == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            status, headers = step if isinstance(step, tuple) else (step, {})
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def _create(server: Server, **fields: Any) -> dict[str, Any]:
    body = {"name": "hook", "kind": "webhook", "events": ["alert.new"], "min_severity": "HIGH", **fields}
    r = server.client.post("/api/v1/notifications", json=body, headers=server.headers("admin"))
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made


def _deliveries(server: Server, target_id: int, role: str = "security-reader") -> list[dict[str, Any]]:
    r = server.client.get(f"/api/v1/notifications/{target_id}/deliveries", headers=server.headers(role))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_a_target_keeps_its_url_and_headers_sealed_and_never_shows_them(server: Server) -> None:
    url = f"https://hooks.slack.com/services/{SLACK_SECRET}"
    made = _create(server, name="slack", kind="slack", url=url, headers={"X-Token": HEADER_SECRET})
    assert made["host"] == "hooks.slack.com" and made["header_names"] == ["X-Token"]
    listed = server.client.get("/api/v1/notifications", headers=server.headers("security-reader"))
    one = server.client.get(f"/api/v1/notifications/{made['id']}", headers=server.headers("security-admin"))
    audit = server.client.get("/api/v1/audit-log", headers=server.headers("admin"))
    for r in (listed, one, audit):
        assert r.status_code == 200
        assert SLACK_SECRET not in r.text and HEADER_SECRET not in r.text
    assert listed.json()["total"] == 1 and one.json() == made
    with server.store.engine.connect() as conn:
        row = conn.execute(select(notification_targets)).one()
    assert SLACK_SECRET not in str(tuple(row)) and HEADER_SECRET not in str(tuple(row))
    assert secretbox.unseal(server.settings, row.url_sealed) == url
    # deleting it deletes its deliveries; a job still queued for one finds nothing and sends nothing
    with server.store.transaction() as tx:
        d = tx.notifications.add_delivery(made["id"], "alert.new", "t", {}, "2026-12-02T00:00:00.000000Z")
    gone = server.client.delete(f"/api/v1/notifications/{made['id']}", headers=server.headers("admin"))
    assert gone.status_code == 200 and gone.json()["id"] == made["id"]
    assert server.client.get(f"/api/v1/notifications/{made['id']}", headers=server.headers("admin")).status_code == 404
    assert notify.deliver(server.store, server.settings, d.id) is None
    with server.store.engine.connect() as conn:
        assert conn.execute(select(notification_deliveries)).first() is None


#: Targets refused with 422, and why.
BAD_TARGETS: list[dict[str, Any]] = [
    {"url": "ftp://example.org/x"},
    {"url": "file:///etc/passwd"},
    {"url": "http://"},
    {"url": "http://exa mple.org/"},
    {"url": "http://h:99999/"},
    {"url": "http://h/" + "a" * 3000},
    {"headers": {"X-A": "one\r\nInjected: yes"}},
    {"headers": {"Bad Name": "v"}},
    {"headers": {"Host": "elsewhere"}},
    {"headers": {"X-Garrison-Event": "forged"}},
    {"headers": {"X-Token": "a", "x-token": "b"}},
    {"headers": {f"X-{i}": "v" for i in range(9)}},
    {"events": ["image.pushed"]},
    {"events": []},
    {"kind": "email"},
    {"min_severity": "SEVERE"},
    {"name": ""},
    {"unexpected": 1},
]


@SQLITE_ONLY
def test_bad_targets_are_refused_and_nothing_is_stored(server: Server) -> None:
    for fields in BAD_TARGETS:
        body = {"name": "bad", "kind": "webhook", "url": "http://127.0.0.1:9/", "events": ["alert.new"], **fields}
        r = server.client.post("/api/v1/notifications", json=body, headers=server.headers("admin"))
        assert r.status_code == 422, (fields, r.text)
        assert r.json()["error"] and "\n" not in r.json()["error"]
    assert server.client.get("/api/v1/notifications", headers=server.headers("admin")).json()["total"] == 0
    with server.store.engine.connect() as conn:
        assert conn.execute(select(notification_targets)).first() is None


@SQLITE_ONLY
def test_names_are_unique_and_only_admins_change_targets(server: Server, receiver: Receiver) -> None:
    made = _create(server, url=receiver.url)
    again = server.client.post(
        "/api/v1/notifications",
        json={"name": "hook", "kind": "webhook", "url": receiver.url, "events": ["alert.new"]},
        headers=server.headers("admin"),
    )
    assert again.status_code == 409
    for role in ("security-admin", "security-reader", "agent"):
        h = server.headers(role)
        assert server.client.delete(f"/api/v1/notifications/{made['id']}", headers=h).status_code == 403
        assert server.client.post(f"/api/v1/notifications/{made['id']}/test", headers=h).status_code == 403
    assert server.client.get("/api/v1/notifications", headers=server.headers("agent")).status_code == 403
    assert receiver.seen == []


def test_publish_delivers_to_subscribed_targets_above_their_severity(server: Server, receiver: Receiver) -> None:
    alerts = _create(server, url=receiver.url + "/alerts", headers={"Authorization": f"Bearer {HEADER_SECRET}"})
    images = _create(server, name="images", url=receiver.url + "/images", events=["image.findings.new"])
    _create(server, name="off", url=receiver.url + "/off", enabled=False)
    data = {"severity": "CRITICAL", "rule": "Terminal shell in container", "cluster": "prod", "count": 3}
    assert notify.publish(server.store, server.queue, "alert.new", "Shell in prod/web", data) == 1
    assert notify.publish(server.store, server.queue, "alert.new", "minor", {"severity": "LOW"}) == 0
    assert notify.publish(server.store, server.queue, "alert.new", "no severity", {}) == 0
    assert notify.publish(server.store, server.queue, "image.findings.fixed", "fixed", {"severity": "CRITICAL"}) == 0
    assert notify.publish(server.store, None, "alert.new", "no queue", data) == 0
    counts = server.wait_jobs()
    assert counts["failed"] == 0
    assert [s.path for s in receiver.seen] == ["/alerts"]
    got = receiver.seen[0]
    assert got.headers["authorization"] == f"Bearer {HEADER_SECRET}"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-garrison-event"] == "alert.new"
    assert set(got.body) == {"event", "title", "data", "time", "server", "delivery"}
    assert got.body["event"] == "alert.new" and got.body["title"] == "Shell in prod/web"
    assert got.body["data"] == data and got.body["server"]["name"] == "garrison"
    (d,) = _deliveries(server, alerts["id"])
    assert d["status"] == "delivered" and d["attempts"] == 1 and d["http_status"] == 200 and d["delivered_at"]
    assert d["id"] == got.body["delivery"] and got.headers["x-garrison-delivery"] == str(d["id"])
    assert _deliveries(server, images["id"]) == []
    with pytest.raises(ValueError, match="unknown notification event"):
        notify.publish(server.store, server.queue, "image.pushed", "x", {})


@pytest.mark.slow  # waits out a Retry-After of 1 s and a backoff of 1 s
@SQLITE_ONLY
def test_busy_answers_are_retried_until_delivered(server: Server, receiver: Receiver) -> None:
    made = _create(server, url=receiver.url)
    receiver.script[:] = [(503, {"Retry-After": "0"}), "drop", (429, {"Retry-After": "1"})]
    assert notify.publish(server.store, server.queue, "alert.new", "retry me", {"severity": "HIGH"}) == 1
    server.wait_jobs()
    assert len(receiver.seen) == 4
    assert len({json.dumps(s.body, sort_keys=True) for s in receiver.seen}) == 1  # the same body each time
    (d,) = _deliveries(server, made["id"])
    assert d["status"] == "delivered" and d["attempts"] == 4 and d["http_status"] == 200 and d["last_error"] == ""


@SQLITE_ONLY
def test_a_delivery_gives_up_after_the_last_attempt(server: Server, receiver: Receiver) -> None:
    made = _create(server, url=receiver.url + "/secret-path")
    receiver.script[:] = [(500, {"Retry-After": "0"})] * 10
    notify.publish(server.store, server.queue, "alert.new", "down", {"severity": "CRITICAL"})
    server.wait_jobs()
    assert len(receiver.seen) == notify.ATTEMPTS
    (d,) = _deliveries(server, made["id"])
    assert d["status"] == "failed" and d["attempts"] == notify.ATTEMPTS and d["http_status"] == 500
    assert d["last_error"] == "127.0.0.1:{} answered 500".format(receiver.url.rsplit(":", 1)[1])
    assert "secret-path" not in json.dumps(d)
    # a run after a crash finds it finished and sends nothing more
    again = notify.deliver(server.store, server.settings, d["id"])
    assert again is not None and again.status is DeliveryStatus.FAILED and len(receiver.seen) == notify.ATTEMPTS


@SQLITE_ONLY
def test_refusals_are_not_retried(server: Server, receiver: Receiver) -> None:
    made = _create(server, url=receiver.url)
    refusals = [(404, "answered 404"), (302, "redirects are not followed")]
    for answer, _ in refusals:
        receiver.script.append((answer, {"Location": receiver.url + "/elsewhere"}))
        notify.publish(server.store, server.queue, "alert.new", "refused", {"severity": "CRITICAL"})
        server.wait_jobs()
    assert [s.path for s in receiver.seen] == ["/", "/"]
    newest_first = _deliveries(server, made["id"])
    for d, (answer, error) in zip(newest_first, reversed(refusals), strict=True):
        assert d["status"] == "failed" and d["attempts"] == 1 and d["http_status"] == answer
        assert error in d["last_error"]


@SQLITE_ONLY
def test_an_unreachable_target_is_retried_then_failed(server: Server) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    made = _create(server, url=f"http://127.0.0.1:{port}/x")
    with server.store.transaction() as tx:
        d = tx.notifications.add_delivery(
            made["id"], "alert.new", "nobody home", {"severity": "HIGH"}, "2026-12-02T00:00:00.000000Z"
        )
    done = notify.deliver(server.store, server.settings, d.id, attempts=2)
    assert done is not None and done.status is DeliveryStatus.FAILED and done.attempts == 2
    assert done.http_status == 0 and done.last_error == f"127.0.0.1:{port}: ConnectError"


@SQLITE_ONLY
def test_slack_targets_get_an_incoming_webhook_body(server: Server, receiver: Receiver) -> None:
    made = _create(server, kind="slack", url=receiver.url + "/services/" + SLACK_SECRET, events=["image.findings.new"])
    data = {"severity": "CRITICAL", "image": "registry.local/web@sha256:ab", "new": {"CRITICAL": 2}, "note": "<b>&"}
    notify.publish(server.store, server.queue, "image.findings.new", "2 new critical findings in web", data)
    server.wait_jobs()
    (got,) = receiver.seen
    assert got.path == "/services/" + SLACK_SECRET
    body = got.body
    assert body["text"] == "2 new critical findings in web"
    header, section, context = body["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "2 new critical findings in web"}}
    texts = [f["text"] for f in section["fields"]]
    assert '*new*\n{"CRITICAL":2}' in texts and "*note*\n&lt;b&gt;&amp;" in texts
    assert context["type"] == "context" and "image.findings.new" in context["elements"][0]["text"]
    (d,) = _deliveries(server, made["id"])
    assert d["status"] == "delivered"


def test_the_test_endpoint_sends_now_and_answers_the_outcome(server: Server, receiver: Receiver) -> None:
    made = _create(server, url=receiver.url)
    r = server.client.post(f"/api/v1/notifications/{made['id']}/test", headers=server.headers("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "delivered" and r.json()["event"] == "test" and r.json()["attempts"] == 1
    assert receiver.seen[0].body["event"] == "test"
    receiver.script[:] = [503]
    r = server.client.post(f"/api/v1/notifications/{made['id']}/test", headers=server.headers("admin"))
    assert r.json()["status"] == "failed" and r.json()["attempts"] == 1 and r.json()["http_status"] == 503
    assert [d["status"] for d in _deliveries(server, made["id"])] == ["failed", "delivered"]
    failed = server.client.get(
        f"/api/v1/notifications/{made['id']}/deliveries?status=failed", headers=server.headers("admin")
    )
    assert failed.json()["total"] == 1
    bad = server.client.get(
        f"/api/v1/notifications/{made['id']}/deliveries?status=odd", headers=server.headers("admin")
    )
    assert bad.status_code == 422
    assert server.client.post("/api/v1/notifications/999/test", headers=server.headers("admin")).status_code == 404


@SQLITE_ONLY
def test_a_target_sealed_under_another_key_fails_loudly(server: Server, receiver: Receiver, tmp_path: Path) -> None:
    made = _create(server, url=receiver.url)
    with server.store.transaction() as tx:
        d = tx.notifications.add_delivery(made["id"], "alert.new", "t", {}, "2026-12-02T00:00:00.000000Z")
    other = ServerSettings(data_dir=tmp_path / "other", database_url=server.settings.database_url)
    done = notify.deliver(server.store, other, d.id)
    assert done is not None and done.status is DeliveryStatus.FAILED and "another key" in done.last_error
    assert receiver.seen == []


@needs_recorded
@SQLITE_ONLY
def test_recorded_audit_events_notify_their_new_alerts_once(server: Server, receiver: Receiver) -> None:
    """The real publisher: the audit webhook fed the recorded events publishes ``alert.new`` for each new
    alert; the target gets those at or above its severity, and nothing when the same events come again."""
    made = _create(server, name="soc", url=receiver.url + "/soc", min_severity="HIGH")
    events = [json.loads(line) for line in RECORDED.read_text().splitlines() if line.strip()]
    body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": events}
    r = server.client.post("/api/v1/events/k8s-audit", json=body, headers=server.headers("agent"))
    assert r.status_code == 200 and r.json()["new_alerts"] > 0, r.text
    server.wait_jobs()
    alerts = server.client.get("/api/v1/alerts?limit=1000", headers=server.headers("admin")).json()["items"]
    high = {a["id"] for a in alerts if a["severity"] in ("HIGH", "CRITICAL")}
    assert high and len(alerts) <= 20  # within the per-request cap: one notification per new alert
    assert {s.body["data"]["id"] for s in receiver.seen} == high and len(receiver.seen) == len(high)
    for s in receiver.seen:
        assert s.body["event"] == "alert.new" and s.body["data"]["severity"] in ("HIGH", "CRITICAL")
        assert s.body["title"].startswith(f"[{s.body['data']['severity']}] {s.body['data']['rule']}")
    assert {d["status"] for d in _deliveries(server, made["id"])} == {"delivered"}
    again = server.client.post("/api/v1/events/k8s-audit", json=body, headers=server.headers("agent"))
    assert again.status_code == 200 and again.json()["new_alerts"] == 0
    server.wait_jobs()
    assert len(receiver.seen) == len(high)


def test_a_target_is_changed_in_place_and_its_new_secrets_sealed(server: Server, receiver: Receiver) -> None:
    made = _create(server, url="https://old.example.org/hook", headers={"X-Old": "old-secret"})
    url = f"/api/v1/notifications/{made['id']}"
    admin = server.headers("admin")
    off = server.client.patch(url, json={"enabled": False, "min_severity": "critical"}, headers=admin)
    assert off.status_code == 200, off.text
    assert off.json()["enabled"] is False and off.json()["min_severity"] == "CRITICAL"
    assert notify.publish(server.store, server.queue, "alert.new", "paused", {"severity": "CRITICAL"}) == 0
    moved = server.client.patch(
        url,
        json={
            "enabled": True,
            "url": receiver.url + "/new",
            "headers": {"X-New": HEADER_SECRET},
            "events": ["alert.new"],
        },
        headers=admin,
    )
    assert moved.status_code == 200 and moved.json()["host"] == receiver.url.split("//")[1]
    assert moved.json()["header_names"] == ["X-New"] and HEADER_SECRET not in moved.text
    assert notify.publish(server.store, server.queue, "alert.new", "moved", {"severity": "CRITICAL"}) == 1
    server.wait_jobs()
    (got,) = receiver.seen
    assert got.path == "/new" and got.headers["x-new"] == HEADER_SECRET and "x-old" not in got.headers
    dropped = server.client.patch(url, json={"headers": {}}, headers=admin)
    assert dropped.json()["header_names"] == []
    _create(server, name="other", url=receiver.url)
    assert server.client.patch(url, json={"name": "other"}, headers=admin).status_code == 409
    bad_patches: list[dict[str, Any]] = [
        {"url": "gopher://x"},
        {"events": []},
        {"min_severity": "LOUD"},
        {"kind": "slack"},
        {"name": " "},
    ]
    for bad in bad_patches:
        assert server.client.patch(url, json=bad, headers=admin).status_code == 422, bad
    assert server.client.patch("/api/v1/notifications/999", json={"enabled": True}, headers=admin).status_code == 404
    assert (
        server.client.patch(url, json={"enabled": False}, headers=server.headers("security-admin")).status_code == 403
    )
    audit = server.client.get("/api/v1/audit-log", headers=admin).json()["items"]
    updates = [e for e in audit if e["action"] == "notification.update"]
    assert [e["detail"]["changed"] for e in updates] == [
        ["headers"],
        ["enabled", "events", "headers", "url"],
        ["enabled", "min_severity"],
    ]
    assert HEADER_SECRET not in json.dumps(audit) and "old-secret" not in json.dumps(audit)


def test_old_sent_and_failed_deliveries_are_purged_and_pending_ones_never(server: Server, receiver: Receiver) -> None:
    """The ``purge_deliveries`` job (queued hourly by both queues) on the server's queue: deliveries sent
    or failed more than ``delivery_retention_days`` ago are deleted, recent ones kept, and a pending one
    is kept however old (its job may still run)."""
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from garrison.store.records import iso_of

    made = _create(server, url=receiver.url, min_severity="LOW")
    receiver.script = [200, 404, 200, 404]  # delivered, failed, delivered, failed
    for n in range(4):
        assert notify.publish(server.store, server.queue, "alert.new", f"alert {n}", {"severity": "HIGH"}) == 1
        server.wait_jobs()
    with server.store.transaction() as tx:
        old_pending = tx.notifications.add_delivery(made["id"], "alert.new", "waits", {}, "2020-01-01T00:00:00.000000Z")
    by_title = {d["title"]: d for d in _deliveries(server, made["id"])}
    assert [by_title[f"alert {n}"]["status"] for n in range(4)] == ["delivered", "failed", "delivered", "failed"]
    # alerts 0 and 1 ended 31 days ago, and the pending one was queued then; alerts 2 and 3 end now
    t = notification_deliveries
    ids = [by_title["alert 0"]["id"], by_title["alert 1"]["id"], old_pending.id]
    month_ago = iso_of(datetime.now(UTC) - timedelta(days=31))
    with server.store.engine.begin() as conn:
        conn.execute(update(t).where(t.c.id.in_(ids)).values(created_at=month_ago, updated_at=month_ago))
    server.queue.enqueue("purge_deliveries", {})
    assert server.wait_jobs()["failed"] == 0
    left = {d["title"]: d["status"] for d in _deliveries(server, made["id"])}
    assert left == {"alert 2": "delivered", "alert 3": "failed", "waits": "pending"}
    # A shorter retention, as of a later day: the rest of the sent and failed go, the pending one stays.
    week = replace(server.settings, delivery_retention_days=7)
    assert notify.purge_deliveries(server.store, week, datetime.now(UTC) + timedelta(days=6)) == 0
    assert notify.purge_deliveries(server.store, week, datetime.now(UTC) + timedelta(days=8)) == 2
    assert [d["title"] for d in _deliveries(server, made["id"])] == ["waits"]


def test_the_retention_is_a_setting() -> None:
    from garrison.config import SettingError
    from garrison.services.settings import load_server_settings

    empty = Path("/nonexistent")
    env = {"GARRISON_CONFIG": str(empty), "GARRISON_DATA_DIR": "/tmp/garrison-test-data"}
    assert load_server_settings(environ=env).delivery_retention_days == 30
    env["GARRISON_DELIVERY_RETENTION_DAYS"] = "7"
    assert load_server_settings(environ=env).delivery_retention_days == 7
    flags = {"delivery_retention_days": ("--delivery-retention-days", "90")}
    assert load_server_settings(flags, environ=env).delivery_retention_days == 90
    env["GARRISON_DELIVERY_RETENTION_DAYS"] = "0"
    with pytest.raises(SettingError, match="delivery_retention_days from GARRISON_DELIVERY_RETENTION_DAYS"):
        load_server_settings(environ=env)
