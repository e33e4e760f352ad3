"""The registries, notifications, scans and images routes without a registry behind them: what they
accept, what they refuse (and then write nothing), who may post a registry's notifications, and that
credentials go in and never come out. The push-to-findings path with a real registry is in
``test_registry_push.py``."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from tests.server.conftest import Server

from garrison.services import registry as reg
from garrison.services import secretbox
from garrison.store import tables
from garrison.store.images import FindingIn, ImageIn

ENVELOPE = {"Content-Type": reg.ENVELOPE_TYPE}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def _registry(server: Server, **extra: Any) -> dict[str, Any]:
    body = {"name": "hub", "url": "http://127.0.0.1:1", **extra}
    r = server.client.post("/api/v1/registries", json=body, headers=server.headers("admin"))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _event(
    action: str, digest: str, tag: str = "", media: str = OCI_MANIFEST, repo: str = "team/app"
) -> dict[str, Any]:
    target = {"mediaType": media, "digest": digest, "repository": repo, "size": 100}
    if tag:
        target["tag"] = tag
    return {"id": "x", "timestamp": "2026-12-02T00:00:00Z", "action": action, "target": target}


def _post(server: Server, rid: int, token: str, events: list[Any], headers: dict[str, str] = ENVELOPE) -> Any:
    return server.client.post(
        f"/api/v1/registries/{rid}/notifications",
        content=json.dumps({"events": events}),
        headers={**headers, "Authorization": f"Bearer {token}"},
    )


def _counts(server: Server) -> tuple[int, int]:
    with server.store.engine.connect() as conn:
        scans = len(list(conn.execute(select(tables.metadata.tables["scans"]))))
        audit = len(list(conn.execute(select(tables.audit_log))))
    return scans, audit


def test_registry_credentials_go_in_and_never_come_out(server: Server) -> None:
    created = _registry(server, username="robot", password="pa55-w0rd-xyz")
    rid = created["registry"]["id"]
    token = created["notification_token"]["secret"]
    assert created["registry"]["has_credentials"] is True and created["registry"]["url"] == "http://127.0.0.1:1"
    texts = [
        server.client.get("/api/v1/registries", headers=server.headers("security-reader")).text,
        server.client.get(f"/api/v1/registries/{rid}", headers=server.headers("security-admin")).text,
        server.client.get("/api/v1/audit-log", headers=server.headers("admin")).text,
    ]
    r = server.client.patch(
        f"/api/v1/registries/{rid}", json={"token": "tok-3xyz-secret"}, headers=server.headers("admin")
    )
    assert r.status_code == 200 and r.json()["has_credentials"] is True
    texts.append(r.text)
    with server.store.engine.connect() as conn:
        dump = repr([list(conn.execute(select(t))) for t in tables.metadata.sorted_tables])
        sealed = conn.execute(select(tables.metadata.tables["registries"].c.credentials)).scalar_one()
    for text in [*texts, dump]:
        assert "pa55-w0rd-xyz" not in text and "tok-3xyz-secret" not in text and "robot" not in text
        assert token not in text
    assert json.loads(secretbox.unseal(server.settings, sealed)) == {"token": "tok-3xyz-secret"}
    r = server.client.patch(
        f"/api/v1/registries/{rid}", json={"clear_credentials": True}, headers=server.headers("admin")
    )
    assert r.json()["has_credentials"] is False


def test_bad_registry_input_is_refused_and_writes_nothing(server: Server) -> None:
    _registry(server)
    before = _counts(server)
    bad = [
        ({"name": "Bad Name", "url": "http://h:1"}, 422),
        ({"name": "ok", "url": "ftp://h"}, 422),
        ({"name": "ok", "url": "https://h/path"}, 422),
        ({"name": "ok", "url": "https://h", "username": "u"}, 422),
        ({"name": "ok", "url": "https://h", "username": "u", "password": "p", "token": "t"}, 422),
        ({"name": "ok", "url": "https://h", "password": "p\nq", "username": "u"}, 422),
        ({"name": "ok", "url": "https://h", "extra": 1}, 422),
        ({"name": "hub", "url": "https://h"}, 409),
    ]
    for body, status in bad:
        r = server.client.post("/api/v1/registries", json=body, headers=server.headers("admin"))
        assert r.status_code == status, (body, r.text)
        assert r.json()["error"]
    assert _counts(server) == before
    names = [
        r["name"] for r in server.client.get("/api/v1/registries", headers=server.headers("admin")).json()["items"]
    ]
    assert names == ["hub"]


def test_notifications_queue_one_scan_per_pushed_manifest(server: Server) -> None:
    created = _registry(server)
    rid, token = created["registry"]["id"], created["notification_token"]["secret"]
    events = [
        _event("push", "sha256:" + "a" * 64, media="application/vnd.oci.image.layer.v1.tar+gzip"),  # a blob
        _event("push", D1, "1.0"),
        _event("push", D1, "latest"),  # the same digest again in the burst
        _event("pull", D2, "old"),
        _event("delete", D1),
        {"action": "push", "target": {"mediaType": OCI_MANIFEST, "repository": "../etc", "digest": "nope"}},
        "not an event object",
    ]
    r = _post(server, rid, token, events[:-1])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["events"] == 6 and len(out["queued"]) == 1 and out["duplicates"] == 1 and out["pulls"] == 1
    assert out["ignored"] == 3
    scan = server.client.get(f"/api/v1/scans/{out['queued'][0]}", headers=server.headers("security-reader")).json()
    assert scan["reference"] == f"127.0.0.1:1/team/app@{D1}" and scan["source"] == "push"
    assert scan["requested_by"] == "registry-hub"
    server.wait_jobs()
    scans = server.client.get("/api/v1/scans", params={"digest": D1}, headers=server.headers("admin")).json()
    assert scans["total"] == 1
    assert scans["items"][0]["status"] == "failed" and "127.0.0.1:1" in scans["items"][0]["error"]
    # Pushed again after its scan failed: scanned again (a done scan would hold it off for the burst window).
    again = _post(server, rid, token, [_event("push", D1, "1.0")]).json()
    assert len(again["queued"]) == 1 and again["duplicates"] == 0
    server.wait_jobs()


def test_notifications_refuse_other_tokens_and_bad_bodies(server: Server) -> None:
    first = _registry(server)
    rid, token = first["registry"]["id"], first["notification_token"]["secret"]
    r = server.client.post(
        "/api/v1/registries", json={"name": "other", "url": "https://other.example"}, headers=server.headers("admin")
    )
    other_token = r.json()["notification_token"]["secret"]
    before = _counts(server)
    push = [_event("push", D1, "1.0")]
    assert _post(server, rid, other_token, push).status_code == 403  # another registry's agent
    assert _post(server, rid, server.tokens["agent"], push).status_code == 403  # a cluster's agent
    assert _post(server, rid, server.tokens["security-admin"], push).status_code == 403
    assert _post(server, rid, token, push, {"Content-Type": "text/plain"}).status_code == 415
    for body in (b"{", b"[]", b'{"events": {}}', b'{"events": [1]}', b"\xff\xfe"):
        r = server.client.post(
            f"/api/v1/registries/{rid}/notifications",
            content=body,
            headers={**ENVELOPE, "Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 422, body
    assert _post(server, 999, token, push).status_code == 404
    big = [_event("push", D1, "1.0")] * 2000
    assert _post(server, rid, token, big).status_code == 413
    assert _counts(server) == before
    # A deleted registry's token stops working.
    assert server.client.delete(f"/api/v1/registries/{rid}", headers=server.headers("admin")).status_code == 200
    assert _post(server, rid, token, push).status_code == 401


def test_scan_requests_are_validated(server: Server) -> None:
    created = _registry(server)
    rid = created["registry"]["id"]
    before = _counts(server)
    h = server.headers("security-admin")
    for body in (
        {"reference": "UPPER/Case:tag"},
        {"reference": "host:1/repo@sha256:zz"},
        {"reference": "a" * 2000},
        {"reference": "other.example/repo:1", "registry_id": rid},
        {"reference": "127.0.0.1:1/repo:1", "registry_id": 999},
    ):
        r = server.client.post("/api/v1/scans", json=body, headers=h)
        assert r.status_code in (404, 422), (body, r.text)
    assert _counts(server) == before
    r = server.client.post("/api/v1/scans", json={"reference": "127.0.0.1:1/team/app:2", "registry_id": rid}, headers=h)
    assert r.status_code == 202 and r.json()["requested_by"] == "security-admin"
    assert r.json()["status"] in ("queued", "running", "failed")  # its job may have started already
    assert server.client.get("/api/v1/scans/424242", headers=h).status_code == 404
    assert server.client.get("/api/v1/scans", params={"status": "bogus"}, headers=h).status_code == 422
    server.wait_jobs()


def _store_image(server: Server, digest: str, tag: str, findings: list[FindingIn]) -> None:
    with server.store.transaction() as tx:
        tx.images.put_image(
            ImageIn(digest, "sha256:" + "c" * 64, "amd64", "Debian GNU/Linux 12", 10), "2026-12-01T00:00:00.000000Z"
        )
        tx.images.see_tag("127.0.0.1:1", "team/app", tag, digest, "2026-12-01T00:00:00.000000Z", pushed=True)
        tx.images.merge_findings(digest, findings, ("vulnerability", "secret"), "2026-12-01T00:00:00.000000Z")
        tx.images.refresh_counts(digest, "x", "2026-12-01T00:00:00.000000Z")


def _vuln(fp: str, severity: str, fixed: str) -> FindingIn:
    doc = {"kind": "vulnerability", "fingerprint": fp, "severity": severity}
    return FindingIn(fp, "vulnerability", f"CVE-{fp}", severity, "bash", "5.2", fixed, bool(fixed), "r1", lambda: doc)


def test_images_findings_filters_and_the_admission_verdict(server: Server) -> None:
    secret = FindingIn(
        "s1", "secret", "aws-access-key-id", "CRITICAL", "", "", "", False, "r1", lambda: {"kind": "secret"}
    )
    _store_image(server, D1, "1.0", [_vuln("a", "CRITICAL", "5.3"), _vuln("b", "CRITICAL", ""), _vuln("c", "LOW", "")])
    _store_image(server, D2, "2.0", [_vuln("d", "HIGH", "1"), secret])
    h = server.headers("security-reader")
    page = server.client.get("/api/v1/images", params={"severity": "critical"}, headers=h).json()
    assert page["total"] == 2  # D2's secret is critical too
    page = server.client.get("/api/v1/images", params={"severity": "LOW"}, headers=h).json()
    assert [i["digest"] for i in page["items"]] == [D1]
    assert page["items"][0]["counts"]["CRITICAL"] == 2 and page["items"][0]["critical_with_fix"] == 1
    assert page["items"][0]["repositories"] == ["127.0.0.1:1/team/app"]
    for params in ({"repository": "' OR 1=1 --"}, {"registry": "x'; DROP TABLE images; --"}):
        assert server.client.get("/api/v1/images", params=params, headers=h).json()["total"] == 0
    assert server.client.get("/api/v1/images", params={"severity": "1 OR 1"}, headers=h).status_code == 422
    url = f"/api/v1/images/{D1}/findings"
    assert server.client.get(url, params={"fixed": "true"}, headers=h).json()["total"] == 1
    assert server.client.get(url, params={"fixed": "false", "severity": "CRITICAL"}, headers=h).json()["total"] == 1
    assert server.client.get(f"/api/v1/images/{D2}/findings", params={"kind": "secret"}, headers=h).json()["total"] == 1
    assert server.client.get(url, params={"kind": "nope"}, headers=h).status_code == 422
    assert server.client.get(f"/api/v1/images/{'sha256:' + '9' * 64}/findings", headers=h).status_code == 404
    one = server.client.get(url, params={"limit": 1}, headers=h).json()
    assert one["total"] == 3 and len(one["items"]) == 1 and one["items"][0]["finding"]["kind"] == "vulnerability"

    v = reg.image_verdict(server.store, "127.0.0.1:1/team/app:1.0")
    assert v is not None and (v.digest, v.critical, v.critical_with_fix, v.secrets) == (D1, 2, 1, 0)
    assert reg.image_verdict(server.store, D2) == reg.image_verdict(server.store, f"127.0.0.1:1/team/app@{D2}")
    v2 = reg.image_verdict(server.store, D2)
    assert v2 is not None and (v2.high, v2.secrets, v2.critical) == (1, 1, 1)
    assert reg.image_verdict(server.store, "127.0.0.1:1/team/app:never") is None
    assert reg.image_verdict(server.store, "not a reference at all") is None


def test_findings_come_most_severe_first(server: Server) -> None:
    _store_image(server, D1, "1.0", [_vuln("l", "LOW", ""), _vuln("c", "CRITICAL", ""), _vuln("m", "MEDIUM", "")])
    _store_image(server, D1, "1.0", [_vuln("h", "HIGH", ""), _vuln("u", "UNKNOWN", ""), _vuln("c", "CRITICAL", "")])
    page = server.client.get(f"/api/v1/images/{D1}/findings", params={"status": "all"}, headers=server.headers("admin"))
    items = page.json()["items"]
    assert [(f["severity"], f["status"]) for f in items] == [
        ("CRITICAL", "open"),
        ("HIGH", "open"),
        ("MEDIUM", "fixed"),
        ("LOW", "fixed"),
        ("UNKNOWN", "open"),
    ]
    assert all(f["fixed_at"] for f in items if f["status"] == "fixed")


def test_a_deleted_registry_can_be_added_again_and_its_old_token_stays_dead(server: Server) -> None:
    first = _registry(server)
    rid, old_token = first["registry"]["id"], first["notification_token"]["secret"]
    assert server.client.delete(f"/api/v1/registries/{rid}", headers=server.headers("admin")).status_code == 200
    again = _registry(server)
    new_token = again["notification_token"]["secret"]
    assert again["registry"]["agent_user_id"] == first["registry"]["agent_user_id"]  # the same identity
    new_id = again["registry"]["id"]
    assert _post(server, new_id, old_token, []).status_code == 401
    assert _post(server, new_id, new_token, []).status_code == 200
    # A user of that name that is not a deleted registry's identity is not taken over.
    server.client.post(
        "/api/v1/users", json={"name": "registry-squat", "role": "agent"}, headers=server.headers("admin")
    )
    r = server.client.post(
        "/api/v1/registries", json={"name": "squat", "url": "https://s.example"}, headers=server.headers("admin")
    )
    assert r.status_code == 409
