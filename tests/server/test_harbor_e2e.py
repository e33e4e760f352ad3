"""Harbor's scanner API end to end with real parts, as Harbor drives it: the server on a loopback port
(uvicorn), Debian's docker-registry with token auth (the flow Harbor's own registry uses) holding the
real app test image pushed by skopeo, garrison registered as the scanner with the registry agent's
token, a scan request carrying a ``Basic`` robot credential, 302 with ``Refresh-After`` while the scan
waits, then the report, whose vulnerabilities are exactly what the CLI pipeline finds in the image
with the same advisory database (built from the real OSV mirror); then the same scan's SBOM report
(spec v1.2) in SPDX and CycloneDX, valid against their standards' schemas and listing exactly the
packages the CLI inventories, and the same SBOMs from the REST API."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from jsonschema import Draft7Validator
from tests.report.test_real_report import schema
from tests.server.test_harbor import ERROR, METADATA, REPORT, SBOM_REPORT, SCAN_RESPONSE, check
from tests.server.test_registry_support import advisory_dbs, install_db, live_server, needs_mirror, wait_for
from tests.support.registry import PASSWORD, USERNAME

from garrison.config import Settings
from garrison.runtime.engine import RuleSet
from garrison.services import harbor
from garrison.services.scan import Scanner, ScanRequest, ScanService

pytestmark = [pytest.mark.slow, needs_mirror]

SCAN_TYPE = "application/vnd.scanner.adapter.scan.request+json; version=1.1"


def _oracle(db: Path, ref: str, cache: Path) -> set[tuple[str, str, str]]:
    """(id, package, version) of every vulnerability the CLI's pipeline finds (shares nothing with the server)."""
    with ScanService(Settings(cache_dir=cache, db_path=str(db), offline=True)) as s:
        report = s.scan(ref, ScanRequest(scanners=frozenset({Scanner.VULN})))
    return {
        (f.detail.vulnerability_id, f.detail.package.name, f.detail.package.version) for f in report.vulnerabilities
    }


def _inventory_purls(ref: str, cache: Path) -> set[str]:
    """The purls of the packages the CLI inventories in the image (shares nothing with the server)."""
    from garrison.api import inventory

    return {p.purl for p in inventory(ref, Settings(cache_dir=cache, offline=True)).packages if p.purl}


def _check_sbom(media_type: str, sbom: dict[str, Any], purls: set[str]) -> None:
    """Valid against its standard's schema, and listing exactly ``purls``."""
    if media_type == "application/spdx+json":
        assert not list(Draft7Validator(schema("spdx-schema-2.3.json")).iter_errors(sbom))
        got = {
            r["referenceLocator"]
            for p in sbom["packages"]
            for r in p.get("externalRefs", ())
            if r["referenceType"] == "purl"
        }
    else:
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(sbom)) is None
        got = {c["purl"] for c in sbom["components"] if c.get("purl")}
    assert got == purls


def test_harbor_scans_a_real_image_and_reports_what_the_cli_finds(
    database_url: str, ruleset: RuleSet, test_images: Any, registry_factory: Any, tmp_path: Path
) -> None:
    dbs = advisory_dbs(test_images)
    vulndb = tmp_path / "vulndb" / "garrison.db"
    vulndb.parent.mkdir()
    install_db(dbs.all, vulndb)
    reg = registry_factory("token")
    digest = reg.push(test_images.app_oci_ref, "library/app:1.0")
    robot = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()

    with live_server(database_url, ruleset, tmp_path / "data", vulndb) as live, live.client() as admin:
        made = admin.post("/api/v1/registries", json={"name": "harbor", "url": f"http://{reg.host}"})
        assert made.status_code == 201, made.text
        token = made.json()["notification_token"]["secret"]
        other = admin.post("/api/v1/registries", json={"name": "other", "url": "http://127.0.0.1:1"})
        other_token = other.json()["notification_token"]["secret"]
        # what an admin pastes into Harbor's "New Scanner" form: the URL and the Authorization header
        scanner = httpx.Client(
            base_url=f"{live.url}/harbor", headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        )
        meta = scanner.get("/api/v1/metadata", headers={"Accept": f"{harbor.METADATA}; version=1.1"})
        assert meta.status_code == 200 and meta.headers["content-type"].endswith("version=1.1")
        check(METADATA, meta.json())
        assert meta.json()["properties"]["harbor.scanner-adapter/vulnerability-database-updated-at"]

        request = {
            "registry": {"url": f"http://{reg.host}", "authorization": robot},
            "artifact": {
                "repository": "library/app",
                "digest": digest,
                "tag": "1.0",
                "mime_type": "application/vnd.oci.image.manifest.v1+json",
            },
        }
        body = json.dumps(request)
        foreign = httpx.post(
            f"{live.url}/harbor/api/v1/scan",
            content=body,
            headers={"Authorization": f"Bearer {other_token}", "Content-Type": SCAN_TYPE},
        )
        assert foreign.status_code == 403 and foreign.headers["content-type"] == harbor.ERROR

        live.queue.stop(grace=5.0)  # hold the job, so the first poll sees it waiting
        accepted = scanner.post("/api/v1/scan", content=body, headers={"Content-Type": SCAN_TYPE})
        assert accepted.status_code == 202, accepted.text
        check(SCAN_RESPONSE, accepted.json())
        report_url = f"/api/v1/scan/{accepted.json()['id']}/report"
        accept = {"Accept": harbor.REPORT_SECURITY}
        waiting = scanner.get(report_url, headers=accept)
        assert waiting.status_code == 302 and int(waiting.headers["refresh-after"]) > 0
        assert scanner.get(report_url, headers={"Authorization": f"Bearer {other_token}"}).status_code == 404
        live.queue.start()
        started = time.monotonic()
        done = wait_for(
            lambda: (r := scanner.get(report_url, headers=accept)).status_code != 302 and r, 180, "the report"
        )
        assert done.status_code == 200, done.text
        print(f"\nHarbor scan: {time.monotonic() - started:.2f} s from the job's release to the report ({live.kind})")
        assert done.headers["content-type"] == harbor.REPORT_SECURITY
        doc = done.json()
        check(REPORT, doc)
        datetime.fromisoformat(doc["generated_at"])
        assert doc["artifact"] == {"repository": "library/app", "digest": digest, "tag": "1.0"}
        assert doc["scanner"]["name"] == "garrison"
        items = doc["vulnerabilities"]
        got = {(v["id"], v["package"], v["version"]) for v in items}
        assert got == _oracle(dbs.all, test_images.app_oci_ref, tmp_path / "cli-cache")
        assert len(got) == len(items)  # one item per finding
        order = ["Unknown", "Low", "Medium", "High", "Critical"]
        assert doc["severity"] == max((v["severity"] for v in items), key=order.index)
        assert any(v["fix_version"] for v in items) and all(v["layer"]["diff_id"].startswith("sha256:") for v in items)
        for v in items:
            assert all(urlsplit(u).scheme in ("http", "https") for u in v["links"])
            cvss = v.get("preferred_cvss", {})
            if "vector_v3" in cvss:
                assert cvss["vector_v3"].startswith("CVSS:3.") and 0 <= cvss["score_v3"] <= 10
                (entry,) = v["vendor_attributes"]["CVSS"].values()
                assert entry["V3Vector"] == cvss["vector_v3"]
        assert any("preferred_cvss" in v for v in items)

        # the older report type: the same report under Harbor 1.10's name
        old = scanner.get(report_url, headers={"Accept": harbor.REPORT_HARBOR})
        assert old.headers["content-type"] == harbor.REPORT_HARBOR and old.json() == doc

        # the SBOM report of the same scan (Harbor 2.11's "Generate SBOM", spec v1.2), in both formats
        purls = _inventory_purls(test_images.app_oci_ref, tmp_path / "cli-cache")
        sbom_accept = {"Accept": harbor.REPORT_SBOM}
        for fmt in ("application/spdx+json", "application/vnd.cyclonedx+json"):
            answer = scanner.get(report_url, headers=sbom_accept, params={"sbom_media_type": fmt})
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"] == harbor.REPORT_SBOM
            rep = answer.json()
            check(SBOM_REPORT, rep)
            assert rep["media_type"] == fmt and rep["generated_at"] == doc["generated_at"]
            assert rep["artifact"] == doc["artifact"] and rep["scanner"] == doc["scanner"]
            _check_sbom(fmt, rep["sbom"], purls)
        # and from the REST API, by digest, as the same documents (the serial number and ids aside)
        api = admin.get(f"/api/v1/images/{digest}/sbom", params={"format": "spdx"})
        assert api.status_code == 200 and api.headers["content-type"] == "application/spdx+json"
        _check_sbom("application/spdx+json", api.json(), purls)
        api = admin.get(f"/api/v1/images/{digest}/sbom")
        assert api.headers["content-type"] == "application/vnd.cyclonedx+json"
        _check_sbom("application/vnd.cyclonedx+json", api.json(), purls)
        stored = admin.get(f"/api/v1/images/{digest}/sbom", params={"format": "garrison"}).json()
        assert stored["schema"] == "garrison.inventory/v1" and {p["purl"] for p in stored["packages"]} >= purls
        assert admin.get(f"/api/v1/images/{digest}/sbom", params={"format": "xml"}).status_code == 422
        assert admin.get(f"/api/v1/images/sha256:{'0' * 64}/sbom").status_code == 404

        # a digest the registry does not have: the scan fails and the report says so (500: Harbor stops)
        missing = {**request, "artifact": {**request["artifact"], "digest": "sha256:" + "0" * 64}}
        lost = scanner.post("/api/v1/scan", content=json.dumps(missing), headers={"Content-Type": SCAN_TYPE})
        assert lost.status_code == 202
        lost_url = f"/api/v1/scan/{lost.json()['id']}/report"
        failed = wait_for(lambda: (r := scanner.get(lost_url)).status_code != 302 and r, 120, "the failed scan")
        assert failed.status_code == 500 and failed.headers["content-type"] == harbor.ERROR
        check(ERROR, failed.json())

        # the robot credential is in no answer and no audit entry
        audit = admin.get("/api/v1/audit-log", params={"limit": 1000}).text
        scans = admin.get("/api/v1/scans").text
        for text in (accepted.text, done.text, failed.text, audit, scans):
            assert robot.split()[1] not in text and PASSWORD not in text
