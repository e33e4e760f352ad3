"""Alerts from node sensors (posted by garrison's own webhook sink, as ``garrison runtime sensor --webhook``
does), the ``resolved`` status and its return to ``active`` when the alert happens again, and the
``alert.new`` notification of new alerts (delivered to a real HTTP receiver on loopback)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
from tests.server.conftest import Server
from tests.server.test_alerts import _alerts, _post_events, needs_recorded
from tests.server.test_clusters import SQLITE_ONLY, register

from garrison.model.common import Severity
from garrison.model.runtime import Alert, AlertEvent, Entities
from garrison.report.alerts_jsonl import alert_line
from garrison.runtime.sinks import WebhookSink
from garrison.services import server as svc

NODE = "/api/v1/events/node"


def node_alert(rule: str = "Reverse shell", node: str = "worker-1", count: int = 3, cluster: str = "") -> Alert:
    """An alert of one of garrison's node rules (``rules/runtime/node.yaml``) as the sensor builds it."""
    return Alert(
        rule=rule,
        priority="Critical",
        severity=Severity.CRITICAL,
        source="syscall",
        mitre_tactic="TA0002",
        mitre_technique="T1059",
        time="2026-12-01T22:50:00.000001Z",
        output=f"Reverse shell (proc=bash node={node})",
        entities=Entities(
            cluster=cluster,
            namespace="shop",
            pod="web-1",
            container="web",
            image="registry.local/shop/web:1.4",
            user="root",
            node=node,
            process="/bin/bash",
            source_address="203.0.113.9:4444",
        ),
        count=count,
        first_seen="2026-12-01T22:50:00.000001Z",
        last_seen="2026-12-01T22:50:07.000001Z",
        events=(AlertEvent("2026-12-01T22:50:00.000001Z", "17"),),
    )


class _App(httpx.BaseTransport):
    """The app behind the test client as the sink's transport (which the sink closes at its end: the
    test client's own stays open)."""

    def __init__(self, server: Server) -> None:
        self.inner = server.client._transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response: httpx.Response = self.inner.handle_request(request)
        return response


def test_the_sensors_webhook_sink_posts_into_the_agents_cluster(server: Server) -> None:
    """The real sink (its thread, batching, headers), its transport the test client's."""
    _, agent = register(server)
    token = agent["Authorization"].split(" ", 1)[1]
    sink = WebhookSink(f"http://testserver{NODE}", token=token, batch=2, transport=_App(server), attempts=1)
    alerts = [node_alert(node=f"worker-{i}", cluster="someone-else") for i in range(5)]
    for a in alerts:
        sink(a)
    stats = sink.close()
    assert stats.delivered == 5 and stats.failed == stats.dropped == 0, stats.summary()
    page = _alerts(server, rule="Reverse shell", limit=100)
    assert page["total"] == 5
    for a in page["items"]:
        assert a["cluster"] == "prod" and a["entities"]["cluster"] == "prod"  # the token's cluster wins
        assert a["source"] == "syscall" and a["severity"] == "CRITICAL" and a["count"] == 3
        assert a["entities"]["node"].startswith("worker-") and a["entities"]["process"] == "/bin/bash"
    # Posted again: folded by fingerprint.
    body = {"alerts": [alert_line(a) for a in alerts]}
    r = server.client.post(NODE, json=body, headers=agent)
    assert r.status_code == 200 and r.json()["new_alerts"] == 0 and r.json()["alerts"] == 5
    assert {a["count"] for a in _alerts(server, rule="Reverse shell")["items"]} == {6}


@SQLITE_ONLY
def test_node_alerts_for_another_cluster_are_refused(server: Server) -> None:
    _, agent = register(server)
    body = {"alerts": [alert_line(node_alert())]}
    r = server.client.post(f"{NODE}?cluster=staging", json=body, headers=agent)
    assert r.status_code == 403
    assert _alerts(server)["total"] == 0
    # An admin names the cluster.
    r = server.client.post(f"{NODE}?cluster=staging", json=body, headers=server.headers("admin"))
    assert r.status_code == 200 and _alerts(server, cluster="staging")["total"] == 1


@SQLITE_ONLY
def test_hostile_node_bodies_are_refused_whole(server: Server) -> None:
    _, agent = register(server)
    good = alert_line(node_alert())
    h = {**agent, "Content-Type": "application/json"}
    before = svc.list_audit_log(server.store).total
    for body in (
        b"{",
        b"[]",
        b'{"alerts": {}}',
        json.dumps({"alerts": [good, {"rule": ""}]}).encode(),
        json.dumps({"alerts": [{**good, "count": 0}]}).encode(),
        json.dumps({"alerts": [{**good, "count": "many"}]}).encode(),
        json.dumps({"alerts": [{**good, "severity": "apocalyptic"}]}).encode(),
        json.dumps({"alerts": [{**good, "first_seen": "yesterday"}]}).encode(),
        json.dumps({"alerts": [{**good, "entities": ["x"]}]}).encode(),
        json.dumps({"alerts": [{**good, "rule": "x" * 300}]}).encode(),
        json.dumps({"alerts": [good] * (svc.MAX_NODE_ALERTS + 1)}).encode(),
        b'{"alerts": [' + b"[" * 50_000 + b"]" * 50_000 + b"]}",
    ):
        r = server.client.post(NODE, content=body, headers=h)
        assert r.status_code == 422, (body[:60], r.text)
        assert r.json()["error"]
    r = server.client.post(
        NODE, content=json.dumps({"alerts": [good]}), headers={**agent, "Content-Type": "text/plain"}
    )
    assert r.status_code == 415
    assert _alerts(server)["total"] == 0 and svc.list_audit_log(server.store).total == before


@needs_recorded
def test_resolve_then_it_happens_again_and_is_active(server: Server) -> None:
    _post_events(server)
    a = _alerts(server, rule="Privileged Container Created")["items"][0]
    url = f"/api/v1/alerts/{a['id']}"
    refused = server.client.post(f"{url}/resolve", json={}, headers=server.headers("security-reader"))
    assert refused.status_code == 403
    r = server.client.post(f"{url}/resolve", json={"reason": "pod deleted"}, headers=server.headers("security-admin"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved" and r.json()["resolved_by"] == "security-admin"
    assert r.json()["resolved_reason"] == "pod deleted" and r.json()["resolved_at"]
    assert server.client.post(f"{url}/resolve", json={}, headers=server.headers("admin")).status_code == 409
    assert _alerts(server, status="resolved")["total"] == 1
    # Reopen, dismiss, reopen: each transition answers with the alert and is logged.
    assert server.client.post(f"{url}/reopen", headers=server.headers("admin")).json()["status"] == "active"
    d = server.client.post(f"{url}/dismiss", json={"reason": "lab"}, headers=server.headers("admin")).json()
    assert d["status"] == "dismissed" and d["resolved_by"] == ""
    assert server.client.post(f"{url}/resolve", json={}, headers=server.headers("admin")).json()["status"] == "resolved"
    # The same events again: the resolved alert is active again (its count grows), and says so.
    _post_events(server)
    again = server.client.get(url, headers=server.headers("security-reader")).json()
    assert again["status"] == "active" and again["resolved_by"] == "" and again["count"] == 2 * a["count"]
    actions = [e.action for e in svc.list_audit_log(server.store, 1000).items if e.target_type == "alert"]
    assert actions == ["alert.resolve", "alert.dismiss", "alert.reopen", "alert.resolve"]
    # "open", the earlier name of "active", still filters.
    assert _alerts(server, status="open")["total"] == _alerts(server, status="active")["total"] > 0


class Receiver:
    """A webhook receiver on loopback: records every POSTed JSON body."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                outer.bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@SQLITE_ONLY
@needs_recorded
def test_new_alerts_are_notified_once_and_suppressed_ones_not(server: Server, receiver: Receiver) -> None:
    from garrison.services import notify

    admin = svc.authenticate(server.store, server.tokens["admin"])
    spec = notify.TargetSpec("ops", "webhook", receiver.url, {}, ("alert.new",), min_severity="LOW")
    target = notify.create_target(server.store, server.settings, admin, spec)
    server.client.post(
        "/api/v1/suppressions",
        json={"rule": "Cluster-Admin Role Bound", "reason": "drill"},
        headers=server.headers("admin"),
    )
    out = _post_events(server)
    server.wait_jobs()
    deliveries = notify.list_deliveries(server.store, target.id, limit=1000).items
    assert out["alerts"] - out["suppressed"] <= svc.MAX_NOTIFY  # one notification each
    low = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
    active = _alerts(server, status="active", limit=1000)["items"]
    assert sorted(d.data["id"] for d in deliveries) == sorted(a["id"] for a in active if a["severity"] in low)
    assert "Cluster-Admin Role Bound" not in {d.data["rule"] for d in deliveries}
    assert all(d.event == "alert.new" and d.title.startswith(f"[{d.data['severity']}]") for d in deliveries)
    assert len(receiver.bodies) == len(deliveries) > 0
    # Nothing new the second time.
    _post_events(server)
    server.wait_jobs()
    assert len(notify.list_deliveries(server.store, target.id, limit=1000).items) == len(deliveries)
