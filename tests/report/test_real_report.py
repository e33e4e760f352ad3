"""End to end on real data: the app test image's inventory, the real advisory database, filters from
user-style inputs, and every renderer's output validated against its standard's schema."""

from __future__ import annotations

import datetime as dt
import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator, Draft7Validator
from tests.support.shared import have_vulndb

from garrison.config import Settings
from garrison.findings import build_options, should_fail
from garrison.findings.suppress import SuppressOptions
from garrison.model import Inventory, Severity
from garrison.report import SCAN_FORMATS, ScanReport, render
from garrison.services.scan import Scanner, ScanRequest, ScanService

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not have_vulndb("Debian"),
        reason="no OSV mirror",
    ),
]


def schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("garrison.report").joinpath("schemas", name).read_text())
    return data


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Inventory, ScanService]:
    """The app image's inventory and a scan service over the real advisory database (opened once)."""
    from tests.support.images import test_images
    from tests.test_oracle_support import real_db_path

    from garrison.api import inventory

    images = test_images()
    inv = inventory(images.app_oci_ref, Settings(cache_dir=tmp_path_factory.mktemp("c"), no_cache=True))
    return inv, ScanService(Settings(db_path=str(real_db_path()), offline=True))


def scan_report(inv: Inventory, service: ScanService, opts: SuppressOptions | None = None) -> ScanReport:
    return service.scan_inventory(inv, ScanRequest(frozenset({Scanner.VULN}), opts or SuppressOptions()))


def render_all(report: ScanReport) -> dict[str, str]:
    out = {}
    for fmt in SCAN_FORMATS:
        buf = io.StringIO()
        render(report, fmt, buf)
        out[fmt] = buf.getvalue()
    return out


def test_real_scan_through_filters_and_every_renderer(real: tuple[Inventory, Any], tmp_path: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    inv, db = real
    full = scan_report(inv, db)
    assert len(full.findings) > 100 and full.db is not None and full.db.sources
    # The envelope and de-duplication lose and add nothing: one finding per matched vulnerability.
    from garrison.matching.matcher import match_inventory

    matched = match_inventory(inv, db.database()).findings
    assert [f.detail for f in full.findings] == list(matched)
    assert len({f.fingerprint for f in full.findings}) == len(matched)
    django = next(f for f in full.vulnerabilities if f.detail.package.name == "Django")
    vex = tmp_path / "vex.json"
    vex.write_text(
        json.dumps(
            {
                "@context": "https://openvex.dev/ns/v0.2.0",
                "statements": [
                    {
                        "vulnerability": {"name": django.rule.id},
                        "products": [{"@id": "pkg:pypi/django"}],
                        "status": "not_affected",
                        "justification": "vulnerable_code_not_in_execute_path",
                    }
                ],
            }
        )
    )
    ignore = tmp_path / "ignore.yaml"
    ignore.write_text("ignore:\n  - package: pkg:npm/lodash\n    reason: test\n    expires: 2099-01-01\n")
    opts = build_options(severity="", ignore_file=ignore, vex=[vex], today=dt.date(2026, 1, 1))
    report = scan_report(inv, db, opts)
    assert len(report.findings) + len(report.suppressed) == len(full.findings)
    assert {s.suppression.by for s in report.suppressed} == {"vex", "ignore-file"}
    assert not any(f.detail.package.name == "lodash" for f in report.vulnerabilities)
    assert django.fingerprint not in {f.fingerprint for f in report.findings}
    assert django.fingerprint in {s.finding.fingerprint for s in report.suppressed}
    docs = render_all(report)
    sarif = json.loads(docs["sarif"])
    assert not list(Draft4Validator(schema("sarif-schema-2.1.0.json")).iter_errors(sarif))
    assert len(sarif["runs"][0]["results"]) == len(report.findings)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(docs["cyclonedx"]) is None
    assert not list(Draft7Validator(schema("spdx-schema-2.3.json")).iter_errors(json.loads(docs["spdx-json"])))
    # orjson writes what the standard encoder would: the same bytes for every JSON format of a real report.
    for fmt in ("json", "sarif", "cyclonedx", "spdx-json"):
        assert docs[fmt] == json.dumps(json.loads(docs[fmt]), indent=2, ensure_ascii=False) + "\n", fmt
    js = json.loads(docs["json"])
    assert js["summary"]["findings"] == len(report.findings) and js["summary"]["suppressed"] == len(report.suppressed)
    assert "Total:" in docs["table"]
    high = scan_report(inv, db, build_options(severity="HIGH+"))
    assert high.findings and all(f.severity >= Severity.HIGH for f in high.findings)
    assert (should_fail(high.findings, Severity.HIGH) and not should_fail(high.findings, Severity.CRITICAL)) or any(
        f.severity is Severity.CRITICAL for f in high.findings
    )
