"""Scan on push, end to end with real parts: Debian's docker-registry (htpasswd auth) sends its
notifications to the server on a loopback port, skopeo pushes the real app test image, the server's
real job queue pulls it once with the registry's sealed credentials, and the findings appear in the API.
Then the advisory database is swapped as ``db update`` does, and rescans record what appeared and what
was fixed, without a pull. Credentials appear in no response, no log line and no table."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.server.test_registry_support import advisory_dbs, install_db, live_server, needs_mirror, wait_for
from tests.support.registry import PASSWORD, USERNAME, fetch_manifest

from garrison.config import Settings
from garrison.runtime.engine import RuleSet
from garrison.services.scan import Scanner, ScanRequest, ScanService
from garrison.store import tables

pytestmark = [pytest.mark.slow, needs_mirror]


_ORACLE: dict[tuple[Path, str], set[str]] = {}


def _fingerprints(db: Path, ref: str, cache: Path) -> set[str]:
    """What the CLI's pipeline finds in the image with this database (the oracle for the server;
    computed once per database and image for every test of the session)."""
    if (db, ref) not in _ORACLE:
        with ScanService(Settings(cache_dir=cache, db_path=str(db), offline=True)) as s:
            report = s.scan(ref, ScanRequest(scanners=frozenset({Scanner.VULN})))
        _ORACLE[db, ref] = {f.fingerprint for f in report.findings}
    return set(_ORACLE[db, ref])


def _findings(c: httpx.Client, digest: str, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        r = c.get(f"/api/v1/images/{digest}/findings", params={"limit": 1000, "offset": len(out), **params})
        assert r.status_code == 200, r.text
        out += r.json()["items"]
        if len(out) >= r.json()["total"]:
            return out


def test_push_scan_findings_then_rescans(
    database_url: str,
    ruleset: RuleSet,
    test_images: Any,
    registry_factory: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    dbs = advisory_dbs(test_images)
    vulndb = tmp_path / "vulndb" / "garrison.db"
    vulndb.parent.mkdir()
    install_db(dbs.held_out, vulndb)
    responses: list[str] = []

    with live_server(database_url, ruleset, tmp_path / "data", vulndb) as live, live.client() as c:
        r = c.post(
            "/api/v1/registries",
            json={"name": "local", "url": "http://127.0.0.1:1", "username": USERNAME, "password": PASSWORD},
        )
        assert r.status_code == 201, r.text
        created = r.json()
        rid, hook_token = created["registry"]["id"], created["notification_token"]["secret"]
        assert created["registry"]["has_credentials"] is True
        reg = registry_factory(
            "htpasswd",
            notify_url=f"{live.url}/api/v1/registries/{rid}/notifications",
            notify_headers={"Authorization": [f"Bearer {hook_token}"]},
        )
        r = c.patch(f"/api/v1/registries/{rid}", json={"url": f"http://{reg.host}"})
        assert r.status_code == 200 and r.json()["host"] == reg.host
        responses += [r.text, c.get("/api/v1/registries").text, c.get(f"/api/v1/registries/{rid}").text]

        started = time.monotonic()
        digest = reg.push(test_images.app_oci_ref, "garrison/app:1.0")

        def done() -> dict[str, Any] | None:
            items = c.get("/api/v1/scans", params={"digest": digest}).json()["items"]
            finished = [s for s in items if s["status"] in ("done", "failed")]
            return finished[0] if finished else None

        scan = wait_for(done, 180, "the pushed image's scan")
        latency = time.monotonic() - started
        assert scan["status"] == "done", scan
        assert scan["source"] == "push" and scan["reference"] == f"{reg.host}/garrison/app@{digest}"
        print(f"\nscan on push: {latency:.2f} s from push start to findings stored ({live.kind})")

        img = c.get(f"/api/v1/images/{digest}").json()
        assert img["repositories"] == [f"{reg.host}/garrison/app"]
        assert {(t["repository"], t["tag"]) for t in img["tags"]} == {("garrison/app", "1.0")}
        assert img["packages"] > 100 and sum(img["counts"].values()) > 0
        listed = c.get("/api/v1/images", params={"registry": reg.host, "repository": "garrison/app"}).json()
        assert [i["digest"] for i in listed["items"]] == [digest]

        vulns = _findings(c, digest, kind="vulnerability")
        cache = tmp_path / "cli-cache"
        assert {f["fingerprint"] for f in vulns} == _fingerprints(dbs.held_out, test_images.app_oci_ref, cache)
        sample = next(f for f in vulns if f["has_fix"])
        v = sample["finding"]["vulnerability"]
        assert v["package"]["name"] == sample["package"] and v["package"]["version"] == sample["installed"]
        assert ", ".join(v["fixed_versions"]) == sample["fixed_version"]
        assert sample["finding"]["subject"]["layer"].startswith("sha256:")
        with_fix = _findings(c, digest, kind="vulnerability", fixed="true")
        without = _findings(c, digest, kind="vulnerability", fixed="false")
        assert all(f["has_fix"] for f in with_fix) and not any(f["has_fix"] for f in without)
        assert len(with_fix) + len(without) == len(vulns)

        # The same digest under another tag: recorded, not scanned again.
        reg.push(test_images.app_oci_ref, "garrison/app:latest")
        wait_for(
            lambda: {t["tag"] for t in c.get(f"/api/v1/images/{digest}").json()["tags"]} == {"1.0", "latest"},
            60,
            "the second tag",
        )
        assert c.get("/api/v1/scans", params={"digest": digest}).json()["total"] == 1

        # A pull is recorded as the tag's last pull.
        assert fetch_manifest(reg, "garrison/app", "1.0").status_code == 200

        def pulled() -> bool:
            tags = c.get(f"/api/v1/images/{digest}").json()["tags"]
            return any(t["tag"] == "1.0" and t["last_pulled"] for t in tags)

        wait_for(pulled, 60, "the pull")

        # db update brings the held-out advisories: a rescan (no pull) finds exactly what the CLI finds more.
        expected_new = _fingerprints(dbs.all, test_images.app_oci_ref, cache) - {f["fingerprint"] for f in vulns}
        assert expected_new
        install_db(dbs.all, vulndb)
        assert c.post("/api/v1/rescans", json={}).status_code == 202
        live.wait_jobs()
        now_open = _findings(c, digest, kind="vulnerability")
        appeared = {f["fingerprint"] for f in now_open} - {f["fingerprint"] for f in vulns}
        assert appeared == expected_new
        run = c.get("/api/v1/rescans").json()["items"][0]
        assert (run["images"], run["appeared"], run["fixed"], run["forced"]) == (1, len(expected_new), 0, False)
        assert all(f["first_seen"] > scan["finished_at"] for f in now_open if f["fingerprint"] in appeared)
        assert c.get("/api/v1/scans", params={"digest": digest}).json()["total"] == 1  # no new scan, no pull

        # Unchanged database: nothing to do. The held-out database again: those findings are fixed.
        runs = c.get("/api/v1/rescans").json()["total"]
        assert c.post("/api/v1/rescans", json={}).status_code == 202
        live.wait_jobs()
        assert c.get("/api/v1/rescans").json()["total"] == runs
        install_db(dbs.held_out, vulndb)
        assert c.post("/api/v1/rescans", json={}).status_code == 202
        live.wait_jobs()
        gone = _findings(c, digest, kind="vulnerability", status="fixed")
        assert {f["fingerprint"] for f in gone} == expected_new
        assert all(f["fixed_at"] and f["status"] == "fixed" for f in gone)
        assert {f["fingerprint"] for f in _findings(c, digest, kind="vulnerability")} == {
            f["fingerprint"] for f in vulns
        }
        responses += [c.get(f"/api/v1/images/{digest}").text, c.get("/api/v1/scans").text]
        with live.store.engine.connect() as conn:
            dump = repr([list(conn.execute(select(t))) for t in tables.metadata.sorted_tables])
            audit = repr(list(conn.execute(select(tables.audit_log))))

    assert digest in dump  # the dump holds the data
    assert PASSWORD not in dump and hook_token not in dump and hook_token not in audit
    for text in responses:
        assert PASSWORD not in text and hook_token not in text
    assert PASSWORD not in caplog.text and hook_token not in caplog.text


def test_a_server_restart_during_a_burst_scans_every_pushed_image_once(
    database_url: str, ruleset: RuleSet, test_images: Any, registry_factory: Any, tmp_path: Path
) -> None:
    """The server stops while images are pushed: distribution keeps re-sending the events it could not
    deliver, the restarted server (same database, same port) takes them, and each digest has one scan."""
    from tests.support.registry import free_port

    dbs = advisory_dbs(test_images)
    port = free_port()
    data = tmp_path / "data"
    with live_server(database_url, ruleset, data, dbs.all, port=port) as live, live.client() as c:
        admin = live.admin
        created = c.post("/api/v1/registries", json={"name": "burst", "url": "http://127.0.0.1:1"}).json()
        rid, hook = created["registry"]["id"], created["notification_token"]["secret"]
        reg = registry_factory(
            "plain",
            notify_url=f"{live.url}/api/v1/registries/{rid}/notifications",
            notify_headers={"Authorization": [f"Bearer {hook}"]},
        )
        c.patch(f"/api/v1/registries/{rid}", json={"url": f"http://{reg.host}"})
        first = reg.push(test_images.debian_oci_ref, "burst/debian:12")
        wait_for(lambda: c.get("/api/v1/scans", params={"digest": first}).json()["total"], 60, "the first scan")
    # The server is down: these pushes' notifications fail and distribution keeps them.
    pushed = [first, reg.push(test_images.app_oci_ref, "burst/app:1")]
    pushed.append(reg.push(test_images.app_oci_ref, "burst/app:again"))  # a digest already pushed: one scan
    pushed.append(reg.push(test_images.debian_oci_ref, "burst/debian:again"))
    with live_server(database_url, ruleset, data, dbs.all, port=port, admin=admin) as live, live.client() as c:

        def all_done() -> bool:
            scans = c.get("/api/v1/scans", params={"limit": 100}).json()["items"]
            return {s["digest"] for s in scans if s["status"] == "done"} >= set(pushed)

        wait_for(all_done, 180, "every pushed image scanned")
        live.wait_jobs()
        scans = c.get("/api/v1/scans", params={"limit": 100}).json()["items"]
        assert sorted(s["digest"] for s in scans) == sorted(set(pushed))
        assert all(s["status"] == "done" for s in scans)
        assert c.get("/api/v1/images").json()["total"] == 2
