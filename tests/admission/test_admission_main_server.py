"""The webhook on the main server (``POST /admission/validate`` of ``create_app``), served over TLS by
uvicorn on 127.0.0.1 and called as the API server calls it (the recorded requests and headers, a cluster
agent's bearer token), on SQLite and PostgreSQL: verdicts from the store's image results, every
decision recorded and listed at ``GET /api/v1/admission/decisions``, break-glass in the audit log."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.admission.recorded import NAMES, encode, exchange, needs_recorded, review
from tests.admission.serving import serve_tls
from tests.server.conftest import Server

from garrison.admission.policy import BREAK_GLASS, parse_policy
from garrison.server.admission import self_signed
from garrison.services import server as svc
from garrison.services.admission import BREAK_GLASS_ACTION
from garrison.store.images import FindingIn, ImageIn
from garrison.store.records import now_iso

pytestmark = needs_recorded
#: The tests that only vary the engine's input run on SQLite alone; those that write the store (decisions,
#: the audit log, image verdicts) run on PostgreSQL too.
sqlite_only = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)

JSON = {"Content-Type": "application/json"}
IMAGE = "127.0.0.1:5000/shop/web:1.0"
DIGEST = "sha256:" + "5e" * 32


@dataclass
class Webhook:
    server: Server
    url: str
    ctx: ssl.SSLContext
    #: The API server's token: an agent of cluster ``prod``.
    token: str

    def post(self, doc: Any, token: str | None = None, path: str = "/admission/validate?timeout=5s") -> httpx.Response:
        headers = {
            "User-Agent": "kube-apiserver-admission",
            "Accept": "application/json, */*",
            "Authorization": f"Bearer {token or self.token}",
            **JSON,
        }
        with httpx.Client(verify=self.ctx, timeout=10) as c:
            return c.post(self.url + path, content=doc if isinstance(doc, bytes) else encode(doc), headers=headers)

    def decisions(self, role: str = "security-reader", **params: Any) -> dict[str, Any]:
        r = self.server.client.get("/api/v1/admission/decisions", params=params, headers=self.server.headers(role))
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    def policy(self, text: str) -> None:
        self.server.client.app.state.admission_policy = parse_policy(text, "test-policy")  # type: ignore[attr-defined]


@pytest.fixture
def webhook(server: Server, tmp_path: Path) -> Iterator[Webhook]:
    made = self_signed(tmp_path / "tls" / "tls.crt", tmp_path / "tls" / "tls.key")
    _, agent = svc.create_user(server.store, svc.CLI_ACTOR, "prod-apiserver", "agent", cluster="prod")
    with serve_tls(server.client.app, made.cert, made.key) as url:
        yield Webhook(server, url, ssl.create_default_context(cadata=made.ca_pem.decode()), agent.secret)


def _store_scan(server: Server, critical_with_fix: int, secrets: int) -> None:
    """A finished scan of :data:`IMAGE` stored as the scan job stores one (image, tag, findings, counts)."""
    at = now_iso()

    def finding(key: str, kind: str, rule: str, severity: str, fixed: str) -> FindingIn:
        return FindingIn(
            fingerprint=key,
            kind=kind,
            rule_id=rule,
            severity=severity,
            package="openssl" if fixed else "",
            installed="3.0.1" if fixed else "",
            fixed_version=fixed,
            has_fix=bool(fixed),
            revision="1",
            render=dict,
        )

    found = [
        finding(f"v{i}", "vulnerability", f"CVE-2026-{1000 + i}", "CRITICAL", "3.0.9") for i in range(critical_with_fix)
    ]
    found += [finding(f"s{i}", "secret", "aws-access-key-id", "HIGH", "") for i in range(secrets)]
    with server.store.transaction() as tx:
        tx.images.put_image(ImageIn(DIGEST, "sha256:" + "c0" * 32, "amd64", "Debian GNU/Linux 12", 88), at)
        tx.images.see_tag("127.0.0.1:5000", "shop/web", "1.0", DIGEST, at, pushed=True)
        tx.images.merge_findings(DIGEST, found, ("vulnerability", "secret"), at)
        tx.images.refresh_counts(DIGEST, "test-db", at)


def _pod(image: str = IMAGE, privileged: bool = False) -> dict[str, Any]:
    doc = review("create-pod-priv")
    container = doc["request"]["object"]["spec"]["containers"][0]
    container["image"] = image
    if not privileged:
        del container["securityContext"]
    return doc


def test_recorded_requests_over_tls_are_judged_and_recorded(webhook: Webhook) -> None:
    verdicts = {}
    for name in NAMES:
        rec = exchange(name)
        r = webhook.post(rec["body"], path="/admission" + rec["path"])
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["apiVersion"] == "admission.k8s.io/v1" and doc["kind"] == "AdmissionReview"
        assert doc["response"]["uid"] == rec["body"]["request"]["uid"]
        verdicts[name] = doc["response"]["allowed"]
    assert verdicts == {
        "create-deployment-web": True,
        "create-pod-hostpath": False,
        "create-pod-priv": False,
        "update-deployment-web": True,
        "update-pod-priv": False,
    }
    page = webhook.decisions()
    assert page["total"] == len(NAMES)
    by_uid = {d["uid"]: d for d in page["items"]}
    priv = by_uid[review("create-pod-priv")["request"]["uid"]]
    assert {k: priv[k] for k in ("cluster", "namespace", "kind", "name", "operation", "username", "allowed")} == {
        "cluster": "prod",
        "namespace": "shop",
        "kind": "Pod",
        "name": "priv",
        "operation": "CREATE",
        "username": "admin",
        "allowed": False,
    }
    assert priv["mode"] == "enforce" and priv["break_glass"] == "" and not priv["dry_run"]
    assert priv["reasons"][0].startswith("GAR-PSS-003 Privileged container: container c: ")
    web = by_uid[review("create-deployment-web")["request"]["uid"]]
    assert web["allowed"] and any(w.startswith("GAR-PSS-015 ") for w in web["warnings"])
    assert any("was never scanned by garrison" in w for w in web["warnings"]), "the default policy warns"


@sqlite_only
def test_privileged_pod_denied_with_a_reason_to_act_on(webhook: Webhook) -> None:
    r = webhook.post(review("create-pod-priv")).json()["response"]
    assert r["allowed"] is False and r["status"]["code"] == 403
    assert (
        "container c: spec.containers[0].securityContext.privileged is true, expected false or unset; "
        "fix: Remove securityContext.privileged from the container, or set it to false." in r["status"]["message"]
    )


def test_stored_critical_with_fix_verdict_denies(webhook: Webhook) -> None:
    webhook.policy("version: 1\ndeny: {frameworks: [pss-baseline]}\nimages: {criticalWithFix: deny, secrets: warn}\n")
    _store_scan(webhook.server, critical_with_fix=2, secrets=1)
    r = webhook.post(_pod()).json()["response"]
    assert r["allowed"] is False
    msg = r["status"]["message"]
    assert f"image {IMAGE} has 2 critical vulnerabilities with a fix available (digest {DIGEST}" in msg
    assert any(
        w.startswith("image check secrets: container c: image " + IMAGE + " contains 1 secret") for w in r["warnings"]
    )
    (d,) = webhook.decisions(allowed="false")["items"]
    assert d["reasons"] == [msg.split("(1) ", 1)[1]]
    # By digest, as a pinned image names it: the same stored verdict.
    pinned = webhook.post(_pod(f"127.0.0.1:5000/shop/web@{DIGEST}")).json()["response"]
    assert pinned["allowed"] is False and "2 critical vulnerabilities with a fix" in pinned["status"]["message"]
    # The same policy, an image whose stored scan is clean: allowed.
    _store_scan(webhook.server, critical_with_fix=0, secrets=0)  # a rescan fixed them
    assert webhook.post(_pod()).json()["response"]["allowed"] is True


@pytest.mark.parametrize(("action", "allowed"), [("deny", False), ("warn", True)])
@sqlite_only
def test_never_scanned_image_per_policy(webhook: Webhook, action: str, allowed: bool) -> None:
    webhook.policy(f"version: 1\ndeny: {{frameworks: [pss-baseline]}}\nimages: {{notScanned: {action}}}\n")
    _store_scan(webhook.server, 0, 0)
    assert webhook.post(_pod()).json()["response"]["allowed"] is True, "this one was scanned"
    r = webhook.post(_pod("127.0.0.1:5000/shop/other:2.0")).json()["response"]
    assert r["allowed"] is allowed
    text = "image 127.0.0.1:5000/shop/other:2.0 was never scanned by garrison"
    assert text in (r["warnings"][0] if allowed else r["status"]["message"])


@sqlite_only
def test_audit_mode_returns_warnings_and_records_would_be_denials(webhook: Webhook) -> None:
    webhook.policy("version: 1\nmode: audit\ndeny: {frameworks: [pss-baseline]}\n")
    r = webhook.post(review("create-pod-priv")).json()["response"]
    assert r["allowed"] is True
    assert r["warnings"][0].startswith("[audit: would deny] GAR-PSS-003 Privileged container")
    (d,) = webhook.decisions()["items"]
    assert d["allowed"] and d["mode"] == "audit" and d["reasons"][0].startswith("GAR-PSS-003")


def test_break_glass_allows_records_and_goes_to_the_audit_log(webhook: Webhook) -> None:
    doc = review("create-pod-priv")
    doc["request"]["object"]["metadata"]["annotations"][BREAK_GLASS] = "INC-4711 node debugging, approved by sre"
    r = webhook.post(doc).json()["response"]
    assert r["allowed"] is True
    assert r["auditAnnotations"]["break-glass"] == "INC-4711 node debugging, approved by sre"
    assert r["warnings"][0].startswith("[break-glass: would deny] GAR-PSS-003")
    (d,) = webhook.decisions(break_glass="true")["items"]
    assert d["break_glass"] == "INC-4711 node debugging, approved by sre" and d["allowed"]
    assert webhook.decisions(break_glass="false")["total"] == 0
    log = webhook.server.client.get("/api/v1/audit-log", headers=webhook.server.headers("admin")).json()["items"]
    (entry,) = [e for e in log if e["action"] == BREAK_GLASS_ACTION]
    assert entry["actor"] == "prod-apiserver" and entry["target_id"] == str(d["id"])
    assert entry["reason"] == "INC-4711 node debugging, approved by sre"
    assert entry["detail"]["user"] == "admin" and entry["detail"]["name"] == "priv"
    assert entry["detail"]["would_deny"][0].startswith("GAR-PSS-003")


@sqlite_only
def test_who_may_call_the_webhook(webhook: Webhook) -> None:
    s = webhook.server
    body = review("create-pod-priv")
    for token, status in (
        (s.tokens["security-reader"], 403),
        (s.tokens["security-admin"], 403),
        (s.tokens["agent"], 403),  # an agent not scoped to a cluster
        ("garrison_not-a-token", 401),
    ):
        r = webhook.post(body, token=token)
        assert r.status_code == status, (token[:12], r.text)
        assert r.json()["status"] == status
    r = webhook.post(body, token=s.tokens["agent"])
    assert "scoped to a cluster" in r.json()["error"]
    with httpx.Client(verify=webhook.ctx) as c:
        assert c.post(webhook.url + "/admission/validate", content=encode(body), headers=JSON).status_code == 401
    assert webhook.decisions()["total"] == 0, "nothing recorded for a refused caller"
    assert webhook.post(body, token=s.tokens["admin"]).status_code == 200
    (d,) = webhook.decisions()["items"]
    assert d["cluster"] == "", "an admin's token speaks for no cluster"


@sqlite_only
def test_bad_bodies_are_refused_and_not_recorded(webhook: Webhook) -> None:
    r = webhook.post(b"{nope")
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    r = webhook.post(review("create-pod-priv"), path="/admission/validate?timeout=soon")
    assert r.status_code == 400
    with httpx.Client(verify=webhook.ctx) as c:
        headers = {"Authorization": f"Bearer {webhook.token}", "Content-Type": "text/plain"}
        r = c.post(webhook.url + "/admission/validate", content=encode(review("create-pod-priv")), headers=headers)
    assert r.status_code == 415
    assert webhook.decisions()["total"] == 0


@sqlite_only
def test_decisions_filters_and_pages(webhook: Webhook) -> None:
    before = now_iso()
    for name in NAMES:
        assert webhook.post(review(name)).status_code == 200
    doc = review("create-pod-priv")
    doc["request"]["dryRun"] = True
    doc["request"]["uid"] = "dry-run-uid"
    webhook.post(doc)
    ns = review("create-pod-priv")
    ns["request"]["namespace"] = ns["request"]["object"]["metadata"]["namespace"] = "kube-system"
    webhook.post(ns)
    assert webhook.decisions()["total"] == len(NAMES) + 2
    assert webhook.decisions(allowed="false")["total"] == 4
    assert webhook.decisions(kind="Deployment")["total"] == 2
    assert webhook.decisions(operation="update")["total"] == 2
    assert (
        webhook.decisions(namespace="kube-system")["items"][0]["skipped"]
        == "namespace kube-system is excluded by the policy"
    )
    assert webhook.decisions(uid="dry-run-uid")["items"][0]["dry_run"] is True
    assert webhook.decisions(cluster="prod", since=before)["total"] == len(NAMES) + 2
    assert webhook.decisions(cluster="other")["total"] == 0
    assert webhook.decisions(namespace="shop' OR '1'='1")["total"] == 0, "filters are values, never SQL"
    assert webhook.decisions(until="2000-01-01T00:00:00Z")["total"] == 0
    first = webhook.decisions(limit=3)
    second = webhook.decisions(limit=3, offset=3)
    assert len(first["items"]) == 3 and first["total"] == len(NAMES) + 2
    ids = [d["id"] for d in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 6, "newest first, no overlap"
    r = webhook.server.client.get(
        "/api/v1/admission/decisions", params={"since": "yesterday"}, headers=webhook.server.headers("admin")
    )
    assert r.status_code == 422 and "ISO 8601" in r.json()["error"]
