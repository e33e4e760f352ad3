"""Exemptions of posture findings through the API: the CLI's exemptions-file semantics (the same parser,
the same matching: the server's verdicts equal ``garrison posture --exemptions`` on the same snapshot),
applied at assessment, reported as exempted (never dropped), each saying how many findings it caught."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from tests.server.conftest import Server
from tests.server.test_clusters import SQLITE_ONLY, get, needs_recorded, post_snapshot, register, snapshot

from garrison.model.posture import Misconfiguration
from garrison.services import server as svc
from garrison.services.posture import PostureOptions, assess


def _exempt(server: Server, role: str = "security-admin", **body: Any) -> Any:
    return server.client.post("/api/v1/exemptions", json=body, headers=server.headers(role))


def _privileged(server: Server) -> dict[str, Any]:
    """The finding of the recorded privileged pod on ``privileged: true``."""
    items = get(server, "/clusters/prod/findings", limit=1000)["items"]
    return next(x for x in items if x["object"] == "Pod/shop/priv" and x["path"].endswith("privileged"))


@needs_recorded
def test_an_exemption_is_applied_at_the_next_assessment_and_counts_what_it_caught(server: Server) -> None:
    _, agent = register(server)
    first = post_snapshot(server, "prod", agent)
    target = _privileged(server)
    r = _exempt(
        server,
        controls=[target["control_id"]],
        namespaces=["shop"],
        resources=["Pod/shop/priv"],
        reason="the CNI test pod, accepted until the migration",
        expires=(dt.date.today() + dt.timedelta(days=30)).isoformat(),
    )
    assert r.status_code == 201, r.text
    ex = r.json()
    assert ex["caught"] == 0 and ex["created_by"] == "security-admin" and ex["cluster"] == ""

    second = post_snapshot(server, "prod", agent)
    assert second["exempted"] >= 1 and second["findings"] == first["findings"] - second["exempted"]
    exempted = get(server, "/clusters/prod/findings", status="exempted", limit=1000)["items"]
    assert {(x["control_id"], x["object"]) for x in exempted} == {(target["control_id"], "Pod/shop/priv")}
    assert all(x["exemption_id"] == ex["id"] and x["exempt_origin"] == f"exemption {ex['id']}" for x in exempted)
    assert exempted[0]["exempt_reason"] == "the CNI test pod, accepted until the migration"
    assert get(server, f"/exemptions/{ex['id']}")["caught"] == len(exempted)
    assert get(server, "/exemptions")["items"][0]["caught"] == len(exempted)
    rec = next(
        x
        for x in get(server, "/clusters/prod/recommendations", limit=1000)["items"]
        if x["control_id"] == target["control_id"]
    )
    assert "Pod/shop/priv" in rec["exempted_objects"] and "Pod/shop/priv" not in rec["objects"]
    # An accepted risk is neither a pass nor a fail: the score leaves it out.
    assert second["summary"]["score"]["overall"]["exempted"] >= 1
    assert second["score"] >= first["score"]

    d = server.client.delete(f"/api/v1/exemptions/{ex['id']}?reason=migrated", headers=server.headers("admin"))
    assert d.status_code == 200 and d.json()["id"] == ex["id"] and d.json()["caught"] == len(exempted)
    assert server.client.get(f"/api/v1/exemptions/{ex['id']}", headers=server.headers("admin")).status_code == 404
    third = post_snapshot(server, "prod", agent)
    assert third["exempted"] == 0 and third["findings"] == first["findings"]
    log = [(e.action, e.reason) for e in svc.list_audit_log(server.store, 1000).items if e.target_type == "exemption"]
    assert log == [
        ("exemption.delete", "migrated"),
        ("exemption.create", "the CNI test pod, accepted until the migration"),
    ]


@SQLITE_ONLY
@needs_recorded
def test_the_server_exempts_what_the_cli_exempts(server: Server, tmp_path: Path) -> None:
    """The same snapshot and the same exemption, as a file for ``garrison posture``: the same verdicts."""
    _, agent = register(server)
    entry: dict[str, Any] = {"controls": ["*"], "selector": {"matchLabels": {"app": "priv"}}, "reason": "lab pod"}
    assert _exempt(server, **entry).status_code == 201
    entry2: dict[str, Any] = {
        "controls": ["*"],
        "resources": ["ClusterRoleBinding/mallory-*"],
        "reason": "platform team",
    }
    assert _exempt(server, **entry2).status_code == 201
    body = snapshot()
    post_snapshot(server, "prod", agent, body)
    served = {
        (x["control_id"], x["object"], x["container"], x["path"], x["exempted"])
        for x in get(server, "/clusters/prod/findings", limit=1000)["items"]
    }

    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(body))
    ex_file = tmp_path / "exemptions.yaml"
    ex_file.write_text(json.dumps({"exemptions": [entry, entry2]}))
    report = assess([f"snapshot:{snap}"], PostureOptions(exemptions_file=ex_file))

    def key(f: Any, exempted: bool) -> tuple[str, str, str, str, bool]:
        m = f.detail
        assert isinstance(m, Misconfiguration)
        return (m.control_id, m.object.display(), m.container, m.path, exempted)

    cli = {key(f, False) for f in report.findings} | {key(s.finding, True) for s in report.exempted}
    assert served == cli
    assert any(x[4] and x[1] == "Pod/shop/priv" for x in served)
    assert any(x[4] and x[1] == "ClusterRoleBinding/mallory-admin" for x in served)


@SQLITE_ONLY
@needs_recorded
def test_an_annotation_on_the_object_exempts_too(server: Server) -> None:
    _, agent = register(server)
    body = snapshot()
    pod = next(o for o in body["items"] if o["kind"] == "Pod" and o["metadata"]["name"] == "priv")
    pod["metadata"].setdefault("annotations", {}).update(
        {"garrison.dev/exempt": "*", "garrison.dev/exempt-reason": "node exporter lab"}
    )
    a = post_snapshot(server, "prod", agent, body)
    exempted = get(server, "/clusters/prod/findings", status="exempted", limit=1000)["items"]
    assert a["exempted"] == len(exempted) > 0 and {x["object"] for x in exempted} == {"Pod/shop/priv"}
    assert all(x["exemption_id"] == 0 and "annotation" in x["exempt_origin"] for x in exempted)
    assert {x["exempt_reason"] for x in exempted} == {"node exporter lab"}


@SQLITE_ONLY
@needs_recorded
def test_an_expired_or_other_clusters_exemption_does_not_apply(server: Server) -> None:
    register(server, "staging")
    _, agent = register(server)
    assert _exempt(server, controls=["*"], cluster="staging", reason="staging only").status_code == 201
    expired = _exempt(server, controls=["*"], namespaces=["shop"], reason="was accepted", expires="2020-01-31")
    assert expired.status_code == 201 and expired.json()["expires"] == "2020-01-31"
    a = post_snapshot(server, "prod", agent)
    assert a["exempted"] == 0
    assert any(f"exemption {expired.json()['id']}: expired on 2020-01-31" in w for w in a["summary"]["warnings"])
    assert get(server, "/exemptions", cluster="prod")["total"] == 1  # the one for every cluster
    assert get(server, "/exemptions", cluster="staging")["total"] == 2
    assert get(server, "/exemptions")["total"] == 2


@SQLITE_ONLY
def test_bad_exemptions_are_refused_with_the_clis_messages(server: Server) -> None:
    register(server)
    before = svc.list_audit_log(server.store).total
    for body, word in (
        ({"controls": ["GAR-PSS-01"], "reason": "typo"}, "did you mean"),
        ({"controls": ["GAR-PSS-001"], "reason": "   "}, "reason"),
        ({"controls": [], "reason": "none"}, "controls"),
        ({"controls": ["GAR-PSS-001"], "reason": "x", "expires": "soon"}, "YYYY-MM-DD"),
        ({"controls": ["GAR-PSS-001"], "reason": "x", "selector": ["app"]}, "selector"),
        ({"controls": ["GAR-PSS-001"], "reason": "x", "selector": {"matchLabel": {"app": "a"}}}, "matchLabel"),
        ({"controls": ["GAR-PSS-001"], "reason": "x", "selector": {}}, "every object"),
        ({"controls": ["*"], "reason": "x", "selector": {"matchLabels": {"app": 1}}}, "matchLabels"),
        (
            {"controls": ["*"], "reason": "x", "selector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}},
            "operator",
        ),
        (
            {"controls": ["*"], "reason": "x", "selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}},
            "need values",
        ),
        ({"controls": ["GAR-PSS-001"], "reason": "x", "cluster": "../prod"}, "cluster"),
        ({"controls": ["GAR-PSS-001"], "reason": "x", "namespaces": [""]}, "namespaces"),
        ({"controls": ["GAR-PSS-001"], "reason": "x", "unknown": 1}, "unknown"),
    ):
        r = _exempt(server, **body)
        assert r.status_code == 422 and word in r.json()["error"], (body, r.text)
    r = _exempt(server, controls=["GAR-PSS-001"], reason="x", cluster="nope")
    assert r.status_code == 404
    assert _exempt(server, role="security-reader", controls=["GAR-PSS-001"], reason="x").status_code == 403
    assert svc.list_audit_log(server.store).total == before
    assert get(server, "/exemptions")["total"] == 0
    assert server.client.delete("/api/v1/exemptions/42", headers=server.headers("admin")).status_code == 404
