"""Alerts from node sensors (posted by garrison's own webhook sink, as ``garrison runtime sensor --webhook``
does), the ``resolved`` status and its return to ``active`` when the alert happens again, and the
``alert.new`` notification of new alerts (delivered to a real HTTP receiver on loopback)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
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


def node_alert(
    rule: str = "Reverse shell",
    node: str = "worker-1",
    count: int = 3,
    cluster: str = "",
    pod: str = "web-1",
    container: str = "web",
) -> Alert:
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
            pod=pod,
            container=container,
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
    entries = [e for e in svc.list_audit_log(server.store, 1000).items if e.target_type == "alert"]
    # (the log lists newest first: the return to active, by the poster, is the last thing that happened)
    assert [e.action for e in entries] == [
        "alert.recur",
        "alert.resolve",
        "alert.dismiss",
        "alert.reopen",
        "alert.resolve",
    ]
    recur = entries[0]
    assert recur.target_id == str(a["id"]) and recur.actor == "agent" and recur.reason == svc.RECURRED_REASON
    assert recur.detail["from"] == "resolved" and recur.detail["to"] == "active"
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


def _notified(receiver: Receiver) -> list[dict[str, Any]]:
    """The ``data`` of each ``alert.new`` the receiver got, oldest first."""
    return [b["data"] for b in receiver.bodies if b["event"] == "alert.new"]


def test_a_resolved_alert_that_happens_again_is_notified_once_and_a_dismissed_one_never(
    server: Server, receiver: Receiver
) -> None:
    """On both databases: the recurrence of a resolved alert is an ``alert.new`` with ``"recurred": true``
    and an ``alert.recur`` audit entry; a dismissed alert that happens again stays dismissed, counts,
    and says nothing."""
    from garrison.services import notify

    _, agent = register(server)
    admin = svc.authenticate(server.store, server.tokens["admin"])
    spec = notify.TargetSpec("ops", "webhook", receiver.url, {}, ("alert.new",), min_severity="LOW")
    notify.create_target(server.store, server.settings, admin, spec)
    body = {"alerts": [alert_line(node_alert())]}

    def post() -> dict[str, Any]:
        r = server.client.post(NODE, json=body, headers=agent)
        assert r.status_code == 200, r.text
        server.wait_jobs()
        out: dict[str, Any] = r.json()
        return out

    def recurs() -> list[Any]:
        return [e for e in svc.list_audit_log(server.store, 1000).items if e.action == "alert.recur"]

    assert post()["new_alerts"] == 1
    first = _notified(receiver)
    assert len(first) == 1 and first[0]["recurred"] is False
    alert_id = first[0]["id"]
    url = f"/api/v1/alerts/{alert_id}"
    post()  # still active: folded, nothing to say
    assert len(_notified(receiver)) == 1 and not recurs()

    h = server.headers("security-admin")
    assert server.client.post(f"{url}/resolve", json={"reason": "pod rebuilt"}, headers=h).status_code == 200
    again = post()
    assert (again["new_alerts"], again["recurred"]) == (0, 1)  # the webhook's answer says so too
    sent = _notified(receiver)
    assert len(sent) == 2 and sent[1]["id"] == alert_id and sent[1]["recurred"] is True
    assert sent[1]["count"] == 3 and sent[1]["fingerprint"] == first[0]["fingerprint"]
    titles = [b["title"] for b in receiver.bodies]
    assert titles[1] == titles[0] + " (again, after it was resolved)"
    now = server.client.get(url, headers=server.headers("security-reader")).json()
    assert now["status"] == "active" and now["count"] == 9 and now["resolved_by"] == ""
    (recur,) = recurs()
    assert recur.target_id == str(alert_id) and recur.actor == "agent:prod" and recur.detail["count"] == 3
    ingest = next(e for e in svc.list_audit_log(server.store, 1000).items if e.action == "events.ingest")
    assert ingest.detail["recurred"] == 1 and ingest.detail["new"] == 0
    assert post()["recurred"] == 0  # active again: nothing more
    assert len(_notified(receiver)) == 2 and len(recurs()) == 1

    # Dismissed: what happens again keeps counting, stays dismissed, and is not notified.
    assert server.client.post(f"{url}/dismiss", json={"reason": "drill"}, headers=h).status_code == 200
    post()
    now = server.client.get(url, headers=server.headers("security-reader")).json()
    assert now["status"] == "dismissed" and now["count"] == 15 and now["dismissed_reason"] == "drill"
    assert len(_notified(receiver)) == 2 and len(recurs()) == 1


def _post_at_once(server: Server, agent: dict[str, str], body: dict[str, Any], n: int = 8) -> list[svc.Ingested]:
    """``body`` ingested by ``n`` threads released together (the agents of one cluster at one moment)."""
    who = svc.authenticate(server.store, agent["Authorization"].split(" ", 1)[1])
    raw = json.dumps(body).encode()
    start = threading.Barrier(n)
    results: list[svc.Ingested] = []
    errors: list[BaseException] = []

    def post() -> None:
        try:
            start.wait(10)
            results.append(svc.ingest_node(server.store, who, raw, queue=server.queue))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=post) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(results) == n
    return results


def test_a_recurrence_posted_by_many_at_once_is_notified_once(server: Server, receiver: Receiver) -> None:
    """Eight agents post the same resolved alert at the same moment: it is active again, every event
    counted, and exactly one of them reports (and notifies) the recurrence — on PostgreSQL the folds
    lock the stored row before reading its status."""
    from garrison.services import notify

    _, agent = register(server)
    admin = svc.authenticate(server.store, server.tokens["admin"])
    spec = notify.TargetSpec("ops", "webhook", receiver.url, {}, ("alert.new",), min_severity="LOW")
    notify.create_target(server.store, server.settings, admin, spec)
    body = {"alerts": [alert_line(node_alert(count=1))]}
    assert server.client.post(NODE, json=body, headers=agent).json()["new_alerts"] == 1
    server.wait_jobs()
    (alert_id,) = {d["id"] for d in _notified(receiver)}
    h = server.headers("security-admin")
    assert server.client.post(f"/api/v1/alerts/{alert_id}/resolve", json={}, headers=h).status_code == 200
    assert sum(r.recurred for r in _post_at_once(server, agent, body)) == 1
    server.wait_jobs()
    now = server.client.get(f"/api/v1/alerts/{alert_id}", headers=server.headers("security-reader")).json()
    assert now["status"] == "active" and now["count"] == 9
    recurs = [e for e in svc.list_audit_log(server.store, 1000).items if e.action == "alert.recur"]
    assert len(recurs) == 1
    assert [d["recurred"] for d in _notified(receiver)] == [False, True]


def test_a_new_alert_posted_by_many_at_once_is_new_once(server: Server, receiver: Receiver) -> None:
    """Eight agents post the same never-seen alert at the same moment: one alert holds every event, and
    exactly one post reports it new (one ``alert.new``). On PostgreSQL no row lock can cover a row that
    does not exist yet; the upsert itself says which statement inserted it."""
    from garrison.services import notify

    _, agent = register(server)
    admin = svc.authenticate(server.store, server.tokens["admin"])
    spec = notify.TargetSpec("ops", "webhook", receiver.url, {}, ("alert.new",), min_severity="LOW")
    notify.create_target(server.store, server.settings, admin, spec)
    results = _post_at_once(server, agent, {"alerts": [alert_line(node_alert(count=1))]})
    server.wait_jobs()
    (alert,) = _alerts(server, rule="Reverse shell")["items"]
    assert alert["count"] == 8 and alert["status"] == "active"
    assert sum(r.new_alerts for r in results) == 1
    assert [d["id"] for d in _notified(receiver)] == [alert["id"]]


def test_node_alerts_of_two_pods_are_two_alerts_and_one_pod_folds(server: Server) -> None:
    """The pod is part of a node alert's identity: the same rule, process and container name in two
    pods of one workload are two alerts; the same pod again folds into its own."""
    _, agent = register(server)
    pods = [node_alert(pod="web-1"), node_alert(pod="web-2"), node_alert(pod="web-1", container="sidecar")]
    r = server.client.post(NODE, json={"alerts": [alert_line(a) for a in pods]}, headers=agent)
    assert r.status_code == 200 and r.json()["new_alerts"] == 3, r.text
    again = [node_alert(pod="web-2", count=2), node_alert(pod="web-1", count=1)]
    r = server.client.post(NODE, json={"alerts": [alert_line(a) for a in again]}, headers=agent)
    assert r.status_code == 200 and r.json()["new_alerts"] == 0 and r.json()["alerts"] == 2
    items = _alerts(server, rule="Reverse shell")["items"]
    counts = {(a["entities"]["pod"], a["entities"]["container"]): a["count"] for a in items}
    assert counts == {("web-1", "web"): 4, ("web-2", "web"): 5, ("web-1", "sidecar"): 3}
    assert len({a["fingerprint"] for a in items}) == 3


def test_fingerprints_name_the_workload_on_both_sources() -> None:
    """Node alerts: the pod and container in the fingerprint (a host process, without a pod, as before:
    its container alone). Audit alerts already name the pod as the targeted object (and the user):
    exec into two pods is two alerts, the same user into one pod one."""
    from garrison.model.common import SubjectKind
    from garrison.model.runtime import alert_finding

    a, b = alert_finding(node_alert(pod="web-1")), alert_finding(node_alert(pod="web-2"))
    assert a.subject.kind is SubjectKind.PROCESS and a.subject.container == "web-1/web"
    assert a.fingerprint != b.fingerprint
    assert alert_finding(node_alert(pod="web-1", count=7)).fingerprint == a.fingerprint
    host = alert_finding(node_alert(pod="", container=""))
    assert host.subject.container == "" and host.fingerprint not in (a.fingerprint, b.fingerprint)

    def exec_into(pod: str, user: str = "alice") -> Alert:
        base = node_alert()
        ents = Entities(cluster="prod", namespace="shop", pod=pod, user=user, resource="pods", name=pod)
        return replace(base, source="k8s_audit", entities=ents)

    one, two = alert_finding(exec_into("web-1")), alert_finding(exec_into("web-2"))
    assert one.subject.kind is SubjectKind.RESOURCE and one.subject.name == "web-1"
    assert one.fingerprint != two.fingerprint != alert_finding(exec_into("web-1", "bob")).fingerprint
    assert alert_finding(exec_into("web-1")).fingerprint == one.fingerprint
