"""Notifications of image findings end to end, through the real publisher: the server on a loopback port
with its real queue, Debian's docker-registry holding the real app test image, a scan job that finds a
critical advisory (``image.findings.new`` to a webhook and to a Slack target), then ``db update`` without it
and the rescan job (``image.findings.fixed``; the Slack target did not subscribe to it). The advisory is a
test record built into a real advisory database (tests/support/osvdb.py) so that the image has exactly one
critical finding: none of the mirror's advisories that match this image is rated critical."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.server.test_notify import Receiver, receiver  # noqa: F401 - the receiver fixture
from tests.server.test_registry_support import install_db, live_server
from tests.support.osvdb import build_test_db

from garrison.model import Advisory, Severity
from garrison.model.vuln import Affected, AffectedRange, RangeEvent
from garrison.runtime.engine import RuleSet

pytestmark = pytest.mark.slow

ADVISORY = "GHSA-garr-crit-0001"


def _databases(root: Path) -> tuple[Path, Path]:
    """(a database where Django < 3.0 has a critical advisory, one without it)."""
    django = Affected(
        ADVISORY,
        "PyPI",
        "django",
        (AffectedRange("ECOSYSTEM", (RangeEvent("introduced", "0"), RangeEvent("fixed", "3.0"))),),
    )
    advisory = Advisory(id=ADVISORY, summary="a critical test advisory", severity=Severity.CRITICAL)
    other = Affected(
        "GHSA-garr-none-0001",
        "PyPI",
        "no-such-project",
        (AffectedRange("ECOSYSTEM", (RangeEvent("introduced", "0"),)),),
    )
    build_test_db(root / "critical", [django], [advisory]).close()
    build_test_db(root / "without", [other]).close()
    return root / "critical" / "garrison.db", root / "without" / "garrison.db"


def test_a_critical_finding_is_notified_when_found_and_when_fixed(
    database_url: str,
    ruleset: RuleSet,
    test_images: Any,
    registry_factory: Any,
    receiver: Receiver,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    critical, without = _databases(tmp_path / "dbs")
    vulndb = tmp_path / "vulndb" / "garrison.db"
    vulndb.parent.mkdir()
    install_db(critical, vulndb)
    reg = registry_factory("plain")
    digest = reg.push(test_images.app_oci_ref, "shop/app:1.0")
    with live_server(database_url, ruleset, tmp_path / "data", vulndb) as live, live.client() as c:
        assert c.post("/api/v1/registries", json={"name": "local", "url": f"http://{reg.host}"}).status_code == 201
        hook = c.post(
            "/api/v1/notifications",
            json={
                "name": "soc",
                "kind": "webhook",
                "url": receiver.url + "/soc",
                "events": ["image.findings.new", "image.findings.fixed"],
                "min_severity": "CRITICAL",
            },
        ).json()
        slack = c.post(
            "/api/v1/notifications",
            json={"name": "slack", "kind": "slack", "url": receiver.url + "/slack", "events": ["image.findings.new"]},
        ).json()
        scan = c.post("/api/v1/scans", json={"reference": f"{reg.host}/shop/app:1.0"})
        assert scan.status_code == 202, scan.text
        live.wait_jobs()
        assert c.get(f"/api/v1/scans/{scan.json()['id']}").json()["status"] == "done"
        by_path = {s.path: s for s in receiver.seen}
        assert sorted(by_path) == ["/slack", "/soc"] and len(receiver.seen) == 2
        new = by_path["/soc"].body
        assert new["event"] == "image.findings.new" and new["data"]["severity"] == "CRITICAL"
        assert new["data"]["digest"] == digest and new["data"]["count"] == 1
        (finding,) = new["data"]["findings"]
        assert finding["id"] == ADVISORY and finding["package"] == "Django" and finding["fixed"] == "3.0"
        assert "shop/app:1.0" in new["title"] and by_path["/slack"].body["text"] == new["title"]

        install_db(without, vulndb)  # what `db update` does: the advisory is gone
        live.queue.enqueue("rescan_all", {}, lock="rescan")
        live.wait_jobs()
        assert len(receiver.seen) == 3
        fixed = receiver.seen[2]
        assert fixed.path == "/soc" and fixed.body["event"] == "image.findings.fixed"
        assert [f["id"] for f in fixed.body["data"]["findings"]] == [ADVISORY]
        soc = c.get(f"/api/v1/notifications/{hook['id']}/deliveries").json()["items"]
        assert [(d["event"], d["status"]) for d in soc] == [
            ("image.findings.fixed", "delivered"),
            ("image.findings.new", "delivered"),
        ]
        assert c.get(f"/api/v1/notifications/{slack['id']}/deliveries").json()["total"] == 1
