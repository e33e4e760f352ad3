"""The audit webhook fed the recorded audit events, then triage: dismissed by a security admin (and
audit-logged), refused to a reader, reopened; filters and pagination."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.server.conftest import Server
from tests.support.shared import shared_path

RECORDED = shared_path("k8s", "recorded", "audit-events.jsonl")
needs_recorded = pytest.mark.skipif(not RECORDED.is_file(), reason=f"no recorded audit events at {RECORDED}")


def _event_list() -> dict[str, Any]:
    items = [json.loads(line) for line in RECORDED.read_text().splitlines() if line.strip()]
    return {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items}


def _post_events(server: Server, role: str = "agent") -> dict[str, Any]:
    r = server.client.post("/api/v1/events/k8s-audit", json=_event_list(), headers=server.headers(role))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _alerts(server: Server, role: str = "security-reader", **params: Any) -> dict[str, Any]:
    r = server.client.get("/api/v1/alerts", params=params, headers=server.headers(role))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


@needs_recorded
def test_recorded_events_become_stored_alerts(server: Server) -> None:
    n_events = sum(1 for line in RECORDED.read_text().splitlines() if line.strip())
    out = _post_events(server)
    assert out["events"] == n_events
    assert out["alerts"] == out["new_alerts"] > 0
    page = _alerts(server, limit=1000)
    assert page["total"] == out["alerts"] == len(page["items"])
    assert sum(a["count"] for a in page["items"]) == out["matches"]
    rules = {a["rule"] for a in page["items"]}
    assert {"Privileged Container Created", "Cluster-Admin Role Bound", "Sensitive Host Path Mounted"} <= rules
    priv = next(a for a in page["items"] if a["rule"] == "Privileged Container Created")
    assert priv["status"] == "active" and priv["severity"] == "HIGH" and priv["namespace"] == "shop"
    assert priv["entities"]["namespace"] == "shop" and priv["entities"]["user"]
    assert len(priv["fingerprint"]) == 32
    # Newest last seen first.
    seen = [a["last_seen"] for a in page["items"]]
    assert seen == sorted(seen, reverse=True)


@needs_recorded
def test_the_same_events_again_fold_into_the_same_alerts(server: Server) -> None:
    first = _post_events(server)
    before = {a["fingerprint"]: a for a in _alerts(server, limit=1000)["items"]}
    second = _post_events(server, role="admin")
    assert second["new_alerts"] == 0 and second["alerts"] == first["alerts"]
    after = {a["fingerprint"]: a for a in _alerts(server, limit=1000)["items"]}
    assert after.keys() == before.keys()
    for fp, a in after.items():
        assert a["count"] == 2 * before[fp]["count"]
        assert a["first_seen"] == before[fp]["first_seen"] and a["id"] == before[fp]["id"]


@needs_recorded
def test_dismiss_by_security_admin_refused_to_reader_then_reopen(server: Server) -> None:
    _post_events(server)
    alert = _alerts(server, rule="Privileged Container Created")["items"][0]
    url = f"/api/v1/alerts/{alert['id']}"

    refused = server.client.post(f"{url}/dismiss", json={"reason": "nope"}, headers=server.headers("security-reader"))
    assert refused.status_code == 403
    assert server.client.get(url, headers=server.headers("security-reader")).json()["status"] == "active"

    no_reason = server.client.post(f"{url}/dismiss", json={}, headers=server.headers("security-admin"))
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["error"]
    blank = server.client.post(f"{url}/dismiss", json={"reason": "   "}, headers=server.headers("security-admin"))
    assert blank.status_code == 422

    r = server.client.post(
        f"{url}/dismiss", json={"reason": "CI runner, expected"}, headers=server.headers("security-admin")
    )
    assert r.status_code == 200
    dismissed = r.json()
    assert dismissed["id"] == alert["id"] and dismissed["status"] == "dismissed"
    assert dismissed["dismissed_by"] == "security-admin" and dismissed["dismissed_reason"] == "CI runner, expected"
    assert _alerts(server, status="dismissed")["total"] == 1
    assert _alerts(server, status="active")["total"] == _alerts(server)["total"] - 1

    again = server.client.post(f"{url}/dismiss", json={"reason": "twice"}, headers=server.headers("security-admin"))
    assert again.status_code == 409

    r = server.client.post(f"{url}/reopen", json={"reason": "look again"}, headers=server.headers("admin"))
    assert r.status_code == 200
    assert r.json()["status"] == "active" and r.json()["dismissed_by"] == ""

    log = server.client.get("/api/v1/audit-log", headers=server.headers("security-admin")).json()
    triage = [e for e in log["items"] if e["target_type"] == "alert"]
    assert [(e["action"], e["actor"], e["reason"]) for e in triage] == [
        ("alert.reopen", "admin", "look again"),
        ("alert.dismiss", "security-admin", "CI runner, expected"),
    ]
    assert all(e["target_id"] == str(alert["id"]) and e["at"] for e in triage)
    ingest = [e for e in log["items"] if e["action"] == "events.ingest"]
    assert len(ingest) == 1 and ingest[0]["actor"] == "agent"


@needs_recorded
def test_filters_and_pagination(server: Server) -> None:
    _post_events(server)
    everything = _alerts(server, limit=1000)
    total = everything["total"]
    shop = _alerts(server, namespace="shop")
    assert 0 < shop["total"] < total and all(a["namespace"] == "shop" for a in shop["items"])
    high = _alerts(server, severity="high")
    assert high["total"] > 0 and all(a["severity"] == "HIGH" for a in high["items"])
    pages = [_alerts(server, limit=2, offset=o) for o in range(0, total, 2)]
    assert all(p["total"] == total for p in pages)
    assert [a["id"] for p in pages for a in p["items"]] == [a["id"] for a in everything["items"]]
    last = everything["items"][0]["last_seen"]
    assert _alerts(server, since=last)["total"] >= 1
    assert _alerts(server, since="2100-01-01T00:00:00Z")["total"] == 0
    assert _alerts(server, until="2000-01-01T00:00:00+00:00")["total"] == 0
    # Filters are values, never SQL.
    assert _alerts(server, rule="x' OR '1'='1")["total"] == 0
    bad = server.client.get("/api/v1/alerts?since=yesterday", headers=server.headers("admin"))
    assert bad.status_code == 422 and "since" in bad.json()["error"]
    assert server.client.get("/api/v1/alerts?status=gone", headers=server.headers("admin")).status_code == 422
    assert server.client.get("/api/v1/alerts?limit=0", headers=server.headers("admin")).status_code == 422


def test_unknown_alert_is_404(server: Server) -> None:
    r = server.client.get("/api/v1/alerts/12345", headers=server.headers("admin"))
    assert r.status_code == 404 and r.json() == {"error": "no alert 12345", "status": 404}


def test_webhook_refuses_what_is_not_an_audit_event_and_writes_nothing(server: Server) -> None:
    post = server.client.post
    h = {**server.headers("agent"), "Content-Type": "application/json"}
    for body in (b"{", b"[]", b'{"kind": "Pod", "apiVersion": "v1"}', b'{"kind": "EventList", "items": [{"a": 1}]}'):
        r = post("/api/v1/events/k8s-audit", content=body, headers=h)
        assert r.status_code == 422, body
        assert r.json()["error"]
    r = post(
        "/api/v1/events/k8s-audit", content=b"{}", headers={**server.headers("agent"), "Content-Type": "text/plain"}
    )
    assert r.status_code == 415
    assert _alerts(server)["total"] == 0
    log = server.client.get("/api/v1/audit-log", headers=server.headers("admin")).json()
    assert not [e for e in log["items"] if e["action"] == "events.ingest"]


@needs_recorded
def test_a_dismissed_alert_stays_dismissed_and_keeps_counting(server: Server) -> None:
    _post_events(server)
    alert = _alerts(server, rule="Cluster-Admin Role Bound")["items"][0]
    url = f"/api/v1/alerts/{alert['id']}"
    server.client.post(f"{url}/dismiss", json={"reason": "break-glass drill"}, headers=server.headers("admin"))
    _post_events(server)
    after = server.client.get(url, headers=server.headers("security-reader")).json()
    assert after["status"] == "dismissed" and after["dismissed_reason"] == "break-glass drill"
    assert after["count"] == 2 * alert["count"]


@needs_recorded
def test_a_scoped_agent_posts_for_its_cluster_only(server: Server) -> None:
    admin = server.headers("admin")
    made = server.client.post("/api/v1/users", json={"name": "prod", "role": "agent", "cluster": "prod"}, headers=admin)
    assert made.status_code == 201 and made.json()["user"]["cluster"] == "prod"
    prod = {"Authorization": f"Bearer {made.json()['token']['secret']}"}
    url = "/api/v1/events/k8s-audit"

    other = server.client.post(f"{url}?cluster=staging", json=_event_list(), headers=prod)
    assert other.status_code == 403 and "prod" in other.json()["error"]
    assert _alerts(server)["total"] == 0

    assert server.client.post(url, json=_event_list(), headers=prod).status_code == 200
    assert server.client.post(f"{url}?cluster=staging", json=_event_list(), headers=admin).status_code == 200
    everything = _alerts(server, limit=1000)
    by_cluster = {c: _alerts(server, cluster=c, limit=1000) for c in ("prod", "staging")}
    assert by_cluster["prod"]["total"] == by_cluster["staging"]["total"] > 0
    assert everything["total"] == 2 * by_cluster["prod"]["total"]
    assert all(a["entities"]["cluster"] == "prod" for a in by_cluster["prod"]["items"])
    # The same rule on the same object in two clusters: two alerts, two fingerprints.
    assert len({a["fingerprint"] for a in everything["items"]}) == everything["total"]

    not_agent = server.client.post(
        "/api/v1/users", json={"name": "x", "role": "admin", "cluster": "prod"}, headers=admin
    )
    assert not_agent.status_code == 422 and "agent" in not_agent.json()["error"]


@needs_recorded
def test_concurrent_batches_lose_no_count(server: Server) -> None:
    """Four threads post the same events at once, three times each: every count is exactly 12 times one."""
    from concurrent.futures import ThreadPoolExecutor

    from garrison.services import server as svc

    body = json.dumps(_event_list()).encode()
    agent = svc.authenticate(server.store, server.tokens["agent"])
    ruleset = server.client.app.state.ruleset  # type: ignore[attr-defined]
    once = svc.ingest_audit(server.store, agent, body, ruleset)
    single = {a["fingerprint"]: a["count"] for a in _alerts(server, limit=1000)["items"]}
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: svc.ingest_audit(server.store, agent, body, ruleset), range(12)))
    assert all(r.alerts == once.alerts for r in results)
    after = {a["fingerprint"]: a["count"] for a in _alerts(server, limit=1000)["items"]}
    assert after == {fp: 13 * n for fp, n in single.items()}
