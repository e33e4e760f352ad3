"""Alert suppression rules: made by a security admin (by rule, namespace, image, user, cluster; with a
reason and an expiry), they dismiss matching alerts as the recorded audit events arrive — stored
``dismissed`` by ``suppression:<id>`` with the rule's reason, never dropped — and count what they caught."""

from __future__ import annotations

from typing import Any

from tests.server.conftest import Server
from tests.server.test_alerts import _alerts, _post_events, needs_recorded
from tests.server.test_clusters import SQLITE_ONLY, get

from garrison.services import server as svc


def _suppress(server: Server, role: str = "security-admin", **body: Any) -> Any:
    return server.client.post("/api/v1/suppressions", json=body, headers=server.headers(role))


@needs_recorded
def test_a_rule_dismisses_matching_alerts_as_they_arrive_and_counts_them(server: Server) -> None:
    r = _suppress(server, rule="Privileged Container Created", namespace="shop", reason="CI runners are privileged")
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["caught"] == 0 and rule["created_by"] == "security-admin" and rule["expires_at"] == ""

    out = _post_events(server)
    assert out["suppressed"] == 1 and out["new_alerts"] == out["alerts"]
    (priv,) = _alerts(server, rule="Privileged Container Created")["items"]
    assert priv["status"] == "dismissed" and priv["dismissed_by"] == f"suppression:{rule['id']}"
    assert priv["dismissed_reason"] == "CI runners are privileged" and priv["dismissed_at"]
    assert _alerts(server, status="active")["total"] == out["alerts"] - 1  # kept, not dropped
    after = get(server, f"/suppressions/{rule['id']}")
    assert after["caught"] == 1 and after["last_caught_at"]

    # The same events again: counted onto the stored alerts; the rule caught nothing new.
    again = _post_events(server)
    assert again["suppressed"] == 0 and again["new_alerts"] == 0
    assert get(server, f"/suppressions/{rule['id']}")["caught"] == 1
    assert _alerts(server, rule="Privileged Container Created")["items"][0]["count"] == 2 * priv["count"]

    ingest = [e for e in svc.list_audit_log(server.store, 1000).items if e.action == "events.ingest"]
    assert [e.detail["suppressed"] for e in ingest] == [0, 1]


@needs_recorded
def test_globs_on_user_and_image_and_an_active_alert_that_recurs_is_caught(server: Server) -> None:
    _post_events(server)
    before = {a["rule"]: a for a in _alerts(server, limit=1000)["items"]}
    user = before["Cluster-Admin Role Bound"]["entities"]["user"]
    r = _suppress(server, rule="Cluster-Admin*", user=user[:3] + "*", reason="break-glass drills")
    assert r.status_code == 201
    out = _post_events(server)
    assert out["suppressed"] >= 1
    caught = [a for a in _alerts(server, limit=1000)["items"] if a["dismissed_by"] == f"suppression:{r.json()['id']}"]
    assert {a["rule"] for a in caught} == {"Cluster-Admin Role Bound"}
    assert get(server, f"/suppressions/{r.json()['id']}")["caught"] == len(caught)
    image_rule = _suppress(server, image="nowhere.example/*", reason="never matches")
    assert image_rule.status_code == 201
    _post_events(server)
    assert get(server, f"/suppressions/{image_rule.json()['id']}")["caught"] == 0


@needs_recorded
def test_a_deleted_or_expired_rule_catches_nothing(server: Server) -> None:
    from garrison.store.clusters import suppressions

    r = _suppress(server, rule="Privileged Container Created", reason="temporary", expires_at="2099-01-01T00:00:00Z")
    assert r.status_code == 201 and r.json()["expires_at"] == "2099-01-01T00:00:00.000000Z"
    with server.store.engine.begin() as conn:  # it expired meanwhile
        conn.execute(suppressions.update().values(expires_at="2020-01-01T00:00:00.000000Z"))
    gone = _suppress(server, rule="Cluster-Admin Role Bound", reason="was one")
    d = server.client.delete(
        f"/api/v1/suppressions/{gone.json()['id']}?reason=no+longer", headers=server.headers("admin")
    )
    assert d.status_code == 200 and d.json()["id"] == gone.json()["id"]
    out = _post_events(server)
    assert out["suppressed"] == 0 and _alerts(server, status="dismissed")["total"] == 0
    log = [(e.action, e.reason) for e in svc.list_audit_log(server.store, 1000).items if e.target_type == "suppression"]
    assert log[0] == ("suppression.delete", "no longer")


@SQLITE_ONLY
def test_bad_rules_are_refused_and_nothing_is_written(server: Server) -> None:
    before = svc.list_audit_log(server.store).total
    for body, word in (
        ({"reason": "matches everything"}, "at least one"),
        ({"rule": "   ", "reason": "blank"}, "at least one"),
        ({"rule": "R"}, "reason"),
        ({"rule": "R", "reason": "  "}, "reason"),
        ({"rule": "R", "reason": "x", "expires_at": "tomorrow"}, "ISO 8601"),
        ({"rule": "R", "reason": "x", "expires_at": "2001-01-01T00:00:00Z"}, "past"),
        ({"rule": "R" * 300, "reason": "x"}, "rule"),
        ({"rule": "R", "reason": "x", "id": 5}, "id"),
    ):
        r = _suppress(server, **body)
        assert r.status_code == 422 and word in r.json()["error"], (body, r.text)
    assert _suppress(server, role="security-reader", rule="R", reason="x").status_code == 403
    assert _suppress(server, role="agent", rule="R", reason="x").status_code == 403
    assert svc.list_audit_log(server.store).total == before
    assert get(server, "/suppressions")["total"] == 0
    assert server.client.delete("/api/v1/suppressions/7", headers=server.headers("admin")).status_code == 404


@SQLITE_ONLY
def test_list_and_pagination(server: Server) -> None:
    ids = [_suppress(server, rule=f"rule {i}", reason=f"r{i}").json()["id"] for i in range(5)]
    pages = [get(server, "/suppressions", limit=2, offset=o) for o in (0, 2, 4)]
    assert [s["id"] for p in pages for s in p["items"]] == ids
    assert all(p["total"] == 5 for p in pages)
    assert get(server, "/suppressions", role="admin")["items"][0]["reason"] == "r0"
