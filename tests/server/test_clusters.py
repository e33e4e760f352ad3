"""Clusters: registered by an admin with their agent and its token; snapshots built from what a real API
server answered (the recorded lists, and the objects the recorded audit events created) posted by the
cluster's agent, assessed by the ``assess_cluster`` job of the server's queue (or inline without one);
recommendations, findings and the secure score over time; hostile requests refused with nothing written.

No Kubernetes API server runs here: the recorded responses in ``../shared/k8s/recorded`` are what one
said, and they are the snapshot's objects."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.server.conftest import Server
from tests.support.shared import shared_path

from garrison.server.app import create_app
from garrison.services import clusters as csvc
from garrison.services import server as svc

RECORDED = shared_path("k8s", "recorded")
needs_recorded = pytest.mark.skipif(
    not (RECORDED / "audit-events.jsonl").is_file(), reason=f"no recorded Kubernetes data at {RECORDED}"
)
#: For tests of what is refused before any row is written (or of parsing alone), one database is enough;
#: the tests of what the store computes run on both.
SQLITE_ONLY = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
LISTS = ("list-deployments.json", "list-pods-limit1.json", "list-pods-continue.json", "list-clusterrolebindings.json")
CREATED = {
    "Pod",
    "Deployment",
    "Service",
    "ConfigMap",
    "ClusterRole",
    "ClusterRoleBinding",
    "Namespace",
    "ServiceAccount",
}


def recorded_objects() -> list[dict[str, Any]]:
    """Every object of the recorded API lists (with the kind the list implies, as kubectl prints it),
    then every object the recorded audit events created that the lists do not hold."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()

    def add(obj: dict[str, Any]) -> None:
        meta = obj.get("metadata", {})
        key = (obj["kind"], meta.get("namespace", ""), meta.get("name", ""))
        if key not in seen:
            seen.add(key)
            out.append(obj)

    for name in LISTS:
        doc = json.loads((RECORDED / "api" / name).read_text())
        for item in doc["items"]:
            add({"kind": doc["kind"][: -len("List")], "apiVersion": doc["apiVersion"], **item})
    for line in (RECORDED / "audit-events.jsonl").read_text().splitlines():
        e = json.loads(line)
        obj = e.get("requestObject")
        if e.get("verb") == "create" and isinstance(obj, dict) and obj.get("kind") in CREATED:
            obj = copy.deepcopy(obj)
            ns = e.get("objectRef", {}).get("namespace")
            if ns:
                obj.setdefault("metadata", {}).setdefault("namespace", ns)
            add(obj)
    return out


def snapshot(copies: int = 1) -> dict[str, Any]:
    """``kubectl get … -A -o json`` of the recorded objects; ``copies`` > 1 repeats the namespaced ones
    in namespaces ``NAME-1`` … (a bigger cluster of the same workloads)."""
    base = recorded_objects()
    items = list(base)
    for i in range(1, copies):
        for obj in base:
            ns = obj.get("metadata", {}).get("namespace")
            if ns:
                twin = copy.deepcopy(obj)
                twin["metadata"]["namespace"] = f"{ns}-{i}"
                twin["metadata"].pop("ownerReferences", None) if obj["kind"] == "Pod" else None
                items.append(twin)
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def register(server: Server, cluster_id: str = "prod") -> tuple[dict[str, Any], dict[str, str]]:
    r = server.client.post(
        "/api/v1/clusters", json={"id": cluster_id, "name": "Production"}, headers=server.headers("admin")
    )
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made, {"Authorization": f"Bearer {made['token']['secret']}"}


def post_snapshot(server: Server, cluster_id: str, headers: dict[str, str], body: Any = None) -> dict[str, Any]:
    """Post and (the server's queue runs the job) wait for the finished assessment."""
    r = server.client.post(f"/api/v1/clusters/{cluster_id}/snapshot", json=body or snapshot(), headers=headers)
    assert r.status_code in (200, 202), r.text
    server.wait_jobs()
    a = server.client.get(
        f"/api/v1/clusters/{cluster_id}/assessments/{r.json()['id']}", headers=server.headers("admin")
    )
    out: dict[str, Any] = a.json()
    assert out["status"] == "done", out
    return out


def get(server: Server, path: str, role: str = "security-reader", **params: Any) -> dict[str, Any]:
    r = server.client.get(f"/api/v1{path}", params=params, headers=server.headers(role))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def audit_actions(server: Server) -> list[str]:
    return [e.action for e in svc.list_audit_log(server.store, 1000).items]


@pytest.fixture
def inline(server: Server) -> Iterator[TestClient]:
    """The same store served without a queue (the snapshot is assessed in the request)."""
    app = create_app(server.store, server.client.app.state.ruleset)  # type: ignore[attr-defined]
    with TestClient(app) as client:
        yield client


def test_register_a_cluster_with_its_agent_and_token(server: Server) -> None:
    made, agent = register(server)
    assert made["cluster"]["id"] == "prod" and made["cluster"]["name"] == "Production"
    assert made["cluster"]["assessment_id"] == 0 and made["cluster"]["score"] is None
    assert made["agent"]["role"] == "agent" and made["agent"]["cluster"] == "prod"
    assert made["agent"]["name"] == "agent:prod" and made["token"]["secret"].startswith(svc.TOKEN_PREFIX)
    assert made["token"]["token"]["prefix"] == made["token"]["secret"][: svc.SHOWN]
    # The token works (and says who it is), and is shown this once: no read returns it.
    me = server.client.get("/api/v1/tokens", headers=agent)
    assert me.status_code == 200 and made["token"]["secret"] not in me.text
    listed = get(server, "/clusters")
    assert listed["total"] == 1 and listed["items"][0]["id"] == "prod"
    assert made["token"]["secret"] not in json.dumps(listed)
    assert get(server, "/clusters/prod")["agent_user_id"] == made["agent"]["id"]
    assert audit_actions(server)[:3] == ["token.create", "user.create", "cluster.create"]

    again = server.client.post("/api/v1/clusters", json={"id": "prod"}, headers=server.headers("admin"))
    assert again.status_code == 409
    for bad in ("Prod", "../etc", "a b", "x" * 64, "-lead", "prod;drop table clusters"):
        r = server.client.post("/api/v1/clusters", json={"id": bad}, headers=server.headers("admin"))
        assert r.status_code == 422, bad
    assert get(server, "/clusters")["total"] == 1
    assert server.client.get("/api/v1/clusters/nope", headers=server.headers("admin")).status_code == 404


@needs_recorded
def test_a_snapshot_by_the_agent_is_assessed_by_the_job(server: Server) -> None:
    _, agent = register(server)
    r = server.client.post("/api/v1/clusters/prod/snapshot", json=snapshot(), headers=agent)
    assert r.status_code == 202 and r.json()["status"] in ("queued", "running", "done"), r.text
    server.wait_jobs()
    a = get(server, f"/clusters/prod/assessments/{r.json()['id']}")
    assert a["status"] == "done" and a["posted_by"] == "agent:prod"
    n = len(recorded_objects())
    assert a["resources"] == n and a["findings"] > 0 and a["exempted"] == 0
    assert 0 <= a["score"] < 100
    assert a["summary"]["resources"]["Pod"] >= 2 and a["summary"]["resources"]["ClusterRoleBinding"] >= 1
    assert all("garrison-assess-" not in w for w in a["summary"]["warnings"])

    cl = get(server, "/clusters/prod")
    assert cl["assessment_id"] == a["id"] and cl["score"] == a["score"] and cl["assessed_at"]

    recs = get(server, "/clusters/prod/recommendations", limit=1000)
    assert recs["assessment_id"] == a["id"] and recs["total"] == len(recs["items"]) > 5
    order = [(-_rank(x["severity"]), -len(x["objects"]), x["control_id"]) for x in recs["items"]]
    assert order == sorted(order)
    assert sum(x["findings"] for x in recs["items"]) == a["findings"]
    by_control = {x["control_id"]: x for x in recs["items"]}
    privileged = [x for x in recs["items"] if "Pod/shop/priv" in x["objects"]]
    assert privileged and all(x["remediation"] for x in privileged)
    assert any("ClusterRoleBinding/mallory-admin" in x["objects"] for x in recs["items"])

    findings = get(server, "/clusters/prod/findings", limit=1000)
    assert findings["total"] == a["findings"]
    f = next(x for x in findings["items"] if x["object"] == "Pod/shop/priv")
    assert f["path"] and f["remediation"] and f["expected"] and not f["exempted"]
    assert set(by_control) == {x["control_id"] for x in findings["items"]}

    score = get(server, "/clusters/prod/score")
    assert score["overall"]["score"] == a["score"] and score["overall"]["checks"] > 0
    assert {"pss-baseline", "pss-restricted"} <= set(score["by_framework"])
    assert {"shop", "(cluster-scoped)"} <= set(score["by_namespace"])
    assert score["history"]["total"] == 1 and "sum(w * passed)" in score["formula"]
    assert "cluster.snapshot" in audit_actions(server) and "cluster.assess" in audit_actions(server)


def _rank(severity: str) -> int:
    return ["UNKNOWN", "NEGLIGIBLE", "LOW", "MEDIUM", "HIGH", "CRITICAL"].index(severity)


@needs_recorded
def test_score_over_time_and_findings_replaced(server: Server) -> None:
    _, agent = register(server)
    first = post_snapshot(server, "prod", agent)
    # The next snapshot: the privileged pod is gone.
    fixed = snapshot()
    fixed["items"] = [o for o in fixed["items"] if o["metadata"].get("name") not in ("priv", "hostpath")]
    second = post_snapshot(server, "prod", server.headers("admin"), fixed)
    assert second["findings"] < first["findings"] and second["score"] > first["score"]
    findings = get(server, "/clusters/prod/findings", limit=1000)
    assert findings["total"] == second["findings"]
    assert {x["assessment_id"] for x in findings["items"]} == {second["id"]}
    assert not [x for x in findings["items"] if x["object"] in ("Pod/shop/priv", "Pod/shop/hostpath")]
    history = get(server, "/clusters/prod/score")["history"]
    assert [p["assessment_id"] for p in history["items"]] == [second["id"], first["id"]]
    assert [p["score"] for p in history["items"]] == [second["score"], first["score"]]
    shop = get(server, "/clusters/prod/score", namespace="shop")["history"]
    assert shop["scope"] == "namespace" and shop["total"] == 2
    baseline = get(server, "/clusters/prod/score", framework="pss-baseline")["history"]
    assert baseline["total"] == 2 and baseline["items"][0]["score"] >= baseline["items"][1]["score"]
    assert get(server, "/clusters/prod/assessments")["total"] == 2


@needs_recorded
def test_recommendation_filters(server: Server) -> None:
    _, agent = register(server)
    post_snapshot(server, "prod", agent)
    everything = get(server, "/clusters/prod/recommendations", limit=1000)
    high = get(server, "/clusters/prod/recommendations", severity="HIGH", limit=1000)
    assert 0 < high["total"] < everything["total"]
    assert all(x["severity"] in ("HIGH", "CRITICAL") for x in high["items"])
    baseline = get(server, "/clusters/prod/recommendations", framework="pss-baseline", limit=1000)
    restricted = get(server, "/clusters/prod/recommendations", framework="pss-restricted", limit=1000)
    # Restricted includes baseline, as Kubernetes defines it.
    assert {x["control_id"] for x in baseline["items"]} <= {x["control_id"] for x in restricted["items"]}
    assert 0 < baseline["total"] < restricted["total"] <= everything["total"]
    one = everything["items"][0]["control_id"]
    only = get(server, "/clusters/prod/recommendations", control=one)
    assert [x["control_id"] for x in only["items"]] == [one]
    shop = get(server, "/clusters/prod/recommendations", namespace="shop", limit=1000)
    assert shop["total"] > 0 and all(x["namespaces"] == ["shop"] for x in shop["items"])
    scoped = get(server, "/clusters/prod/recommendations", namespace="(cluster-scoped)", limit=1000)
    assert scoped["total"] > 0 and all(x["namespaces"] == [""] for x in scoped["items"])
    pages = [get(server, "/clusters/prod/recommendations", limit=3, offset=o) for o in range(0, everything["total"], 3)]
    assert [x["control_id"] for p in pages for x in p["items"]] == [x["control_id"] for x in everything["items"]]
    # A typo is an error naming the close match, never an empty page that looks clean.
    for params, word in (({"framework": "pss-basline"}, "pss-baseline"), ({"control": "GAR-PSS-01"}, "GAR-PSS-0")):
        r = server.client.get("/api/v1/clusters/prod/recommendations", params=params, headers=server.headers("admin"))
        assert r.status_code == 422 and word in r.json()["error"], r.text
    assert (
        server.client.get("/api/v1/clusters/prod/findings?severity=urgent", headers=server.headers("admin")).status_code
        == 422
    )
    # Values, never SQL.
    assert get(server, "/clusters/prod/recommendations", namespace="x' OR '1'='1")["total"] == 0
    assert get(server, "/clusters/prod/findings", namespace="shop' --")["total"] == 0


@needs_recorded
def test_an_api_list_as_the_server_answers_it(server: Server) -> None:
    """``curl …/apis/apps/v1/deployments``: a DeploymentList whose items carry no kind."""
    _, agent = register(server)
    body = json.loads((RECORDED / "api" / "list-deployments.json").read_text())
    assert "kind" not in body["items"][0]
    a = post_snapshot(server, "prod", agent, body)
    assert a["summary"]["resources"] == {"Deployment": len(body["items"])} and a["findings"] > 0
    objects = {x["object"] for x in get(server, "/clusters/prod/findings", limit=1000)["items"]}
    assert "Deployment/shop/web" in objects


@needs_recorded
def test_another_clusters_token_is_refused_and_nothing_is_written(server: Server) -> None:
    register(server, "prod")
    _, staging = register(server, "staging")
    before = svc.list_audit_log(server.store).total
    r = server.client.post("/api/v1/clusters/prod/snapshot", json=snapshot(), headers=staging)
    assert r.status_code == 403 and "staging" in r.json()["error"]
    # Not even whether a cluster exists.
    r = server.client.post("/api/v1/clusters/nope/snapshot", json=snapshot(), headers=staging)
    assert r.status_code == 403
    server.wait_jobs()
    assert svc.list_audit_log(server.store).total == before
    assert get(server, "/clusters/prod/assessments")["total"] == 0
    assert get(server, "/clusters/prod")["assessment_id"] == 0
    # And an agent reads nothing.
    assert server.client.get("/api/v1/clusters/staging", headers=staging).status_code == 403


@SQLITE_ONLY
def test_hostile_snapshots_are_refused_and_nothing_is_written(server: Server) -> None:
    _, agent = register(server)
    url = "/api/v1/clusters/prod/snapshot"
    before = svc.list_audit_log(server.store).total
    json_h = {**agent, "Content-Type": "application/json"}
    for body in (
        b"{",
        b"[1, 2]",
        b'"a string"',
        b"{}",
        b'{"apiVersion": "v1", "kind": "List", "items": []}',
        b'{"items": [{"metadata": {}}]}',
        b"\xff\xfe not utf-8",
        b"[" * 100_000 + b"]" * 100_000,
        b"   ",
    ):
        r = server.client.post(url, content=body, headers=json_h)
        assert r.status_code == 422, (body[:30], r.status_code, r.text)
        assert r.json()["error"] and r.json()["status"] == 422
    yaml_h = {**agent, "Content-Type": "application/yaml"}
    for body in (b"key: [unclosed", b"just a scalar", b"a: &a [*a, *a]"):
        r = server.client.post(url, content=body, headers=yaml_h)
        assert r.status_code == 422, (body, r.text)
    r = server.client.post(url, content=b"{}", headers={**agent, "Content-Type": "text/plain"})
    assert r.status_code == 415
    r = server.client.post("/api/v1/clusters/prod%2F..%2Fstaging/snapshot", content=b"{}", headers=json_h)
    assert r.status_code in (403, 404)
    server.wait_jobs()
    assert svc.list_audit_log(server.store).total == before
    assert get(server, "/clusters/prod/assessments")["total"] == 0


@SQLITE_ONLY
def test_an_oversized_snapshot_is_413_and_nothing_is_written(server: Server) -> None:
    app = create_app(server.store, server.client.app.state.ruleset, max_event_body=50_000)  # type: ignore[attr-defined]
    with TestClient(app) as client:
        _, agent = register(server)
        big = json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": [{"kind": "ConfigMap", "data": {"x": "y" * 70_000}}]}
        )
        r = client.post(
            "/api/v1/clusters/prod/snapshot", content=big, headers={**agent, "Content-Type": "application/json"}
        )
        assert r.status_code == 413
        assert get(server, "/clusters/prod/assessments")["total"] == 0
        # The management routes keep their small limit: the snapshot's is its own.
        r = client.post(
            "/api/v1/exemptions", content=big, headers={**server.headers("admin"), "Content-Type": "application/json"}
        )
        assert r.status_code == 413


@SQLITE_ONLY
@needs_recorded
def test_without_a_queue_the_snapshot_is_assessed_in_the_request_json_or_yaml(
    server: Server, inline: TestClient
) -> None:
    _, agent = register(server)
    r = inline.post("/api/v1/clusters/prod/snapshot", json=snapshot(), headers=agent)
    assert r.status_code == 200 and r.json()["status"] == "done", r.text
    assert r.json()["resources"] == len(recorded_objects())
    assert get(server, "/clusters/prod")["assessment_id"] == r.json()["id"]
    # kubectl get -o yaml
    body = b"""apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: p, namespace: team}
  spec:
    containers:
    - name: c
      image: nginx:latest
      securityContext: {privileged: true}
"""
    r = inline.post(
        "/api/v1/clusters/prod/snapshot", content=body, headers={**agent, "Content-Type": "application/yaml"}
    )
    assert r.status_code == 200 and r.json()["resources"] == 1, r.text
    objects = {x["object"] for x in get(server, "/clusters/prod/findings", limit=1000)["items"]}
    assert objects == {"Pod/team/p"}


@SQLITE_ONLY
@needs_recorded
def test_the_job_is_safe_to_run_again(server: Server) -> None:
    _, agent = register(server)
    a = post_snapshot(server, "prod", agent)
    again = csvc.run_assessment(server.store, a["id"])
    assert again is not None and again.status == "done" and again.findings == a["findings"]
    assert get(server, "/clusters/prod/findings")["total"] == a["findings"]
    assert csvc.run_assessment(server.store, 987654) is None


@needs_recorded
def test_secret_values_in_a_snapshot_are_not_kept(server: Server) -> None:
    """The snapshot waits in the database for its job and is deleted with the results; the findings name
    the field (an env var's name, a key), never its value."""
    from sqlalchemy import select

    from garrison.store import tables

    _, agent = register(server)
    value = "hunter2-" + "q7Zx" * 6
    body = snapshot()
    web = next(o for o in body["items"] if o["kind"] == "Deployment")
    web["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "DB_PASSWORD", "value": value}]
    body["items"].append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": "shop"},
            "stringData": {"k": value},
        }
    )
    a = post_snapshot(server, "prod", agent, body)
    assert any(x["path"].endswith(".name") for x in get(server, "/clusters/prod/findings", limit=1000)["items"])
    with server.store.engine.connect() as conn:
        dump = repr([list(conn.execute(select(t))) for t in tables.metadata.sorted_tables])
    assert a["findings"] > 0 and "DB_PASSWORD" in dump and value not in dump
