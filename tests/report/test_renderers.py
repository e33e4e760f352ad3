"""Every renderer on one realistic report; standards checked against the official schemas (SARIF 2.1.0 and
SPDX 2.3 vendored in garrison/report/schemas, CycloneDX 1.6 with cyclonedx-python-lib's validator)."""

from __future__ import annotations

import io
import json
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft4Validator, Draft7Validator

from garrison.errors import UsageError
from garrison.model import (
    Advisory,
    Artifact,
    Inventory,
    LayerInfo,
    MatchDetail,
    OSInfo,
    Package,
    PackageType,
    Severity,
    SourceKind,
    Suppressed,
    Suppression,
    Vulnerability,
)
from garrison.model.secret import Secret, secret_finding
from garrison.model.vuln import vulnerability_finding
from garrison.report import (
    INVENTORY_FORMATS,
    SCAN_FORMATS,
    DBProvenance,
    DBSource,
    ScanReport,
    render,
    render_inventory,
)

LAYER = "sha256:" + "a" * 64
SSL = Package(
    "libssl3",
    "3.0.9-1",
    PackageType.DEB,
    purl="pkg:deb/debian/libssl3@3.0.9-1?arch=amd64&distro=debian-12",
    locations=("var/lib/dpkg/status",),
    layer=LAYER,
    source_name="openssl",
    source_version="3.0.9-1",
    arch="amd64",
    licenses=("Apache-2.0",),
)
ZLIB = Package(
    "zlib1g",
    "1:1.2.13.dfsg-1",
    PackageType.DEB,
    purl="pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1",
    locations=("var/lib/dpkg/status",),
    layer=LAYER,
    source_name="zlib",
    licenses=("Zlib", "some free-text licence"),
)
DJANGO = Package(
    "Django",
    "2.2.10",
    PackageType.PYTHON,
    purl="pkg:pypi/django@2.2.10",
    locations=("app/venv/lib/python3.11/site-packages/Django-2.2.10.dist-info/METADATA",),
    layer="sha256:" + "b" * 64,
    licenses=("BSD-3-Clause",),
)
LODASH = Package(
    "lodash",
    "4.17.15",
    PackageType.NPM,
    purl="pkg:npm/lodash@4.17.15",
    locations=("app/node_modules/lodash/package.json",),
)

ADV_SSL = Advisory(
    "DEBIAN-CVE-2023-5678",
    aliases=("CVE-2023-5678",),
    summary="openssl: DH excessive time",
    details="Generating excessively long X9.42 DH keys ...",
    severity=Severity.MEDIUM,
    cvss_vectors=("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L",),
    cvss_score=5.3,
    references=("https://security-tracker.debian.org/tracker/CVE-2023-5678",),
    published="2023-11-06T16:15:00Z",
    modified="2024-05-01T00:00:00Z",
    source="Debian",
)
ADV_DJ = Advisory(
    "GHSA-3gh2-xw74-jmcw",
    aliases=("CVE-2020-9402",),
    summary="SQL injection in Django",
    severity=Severity.HIGH,
    cvss_score=8.8,
    cvss_vectors=("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",),
    source="PyPI",
)
ADV_LO = Advisory(
    "GHSA-p6mc-m468-83gw",
    aliases=("CVE-2020-8203",),
    summary="Prototype pollution in lodash",
    severity=Severity.CRITICAL,
    source="npm",
)


def finding(*args: Any, **kw: Any) -> Any:
    return vulnerability_finding(Vulnerability(*args, **kw), "oci:build/app:latest")


F_SSL = finding(
    SSL,
    ADV_SSL,
    "CVE-2023-5678",
    Severity.MEDIUM,
    ("3.0.11-1~deb12u2",),
    match=MatchDetail("Debian:12", "openssl", "3.0.9-1", "introduced 0, fixed 3.0.11-1~deb12u2", "dpkg"),
)
F_DJ = finding(
    DJANGO,
    ADV_DJ,
    "CVE-2020-9402",
    Severity.HIGH,
    ("2.2.11", "3.0.4"),
    kev=True,
    merged_ids=("PYSEC-2020-35",),
    match=MatchDetail("PyPI", "django", "2.2.10", "introduced 2.2, fixed 2.2.11", "pep440"),
)
F_LO = finding(LODASH, ADV_LO, "CVE-2020-8203", Severity.CRITICAL, ())
F_ZL = finding(
    ZLIB,
    Advisory("DEBIAN-CVE-2023-45853", aliases=("CVE-2023-45853",)),
    "CVE-2023-45853",
    Severity.UNKNOWN,
    (),
)

INV = Inventory(
    Artifact(
        "oci:build/app:latest",
        SourceKind.OCI,
        digest="sha256:" + "c" * 64,
        config_digest="sha256:" + "d" * 64,
        architecture="amd64",
        os="linux",
        layers=(LayerInfo(0, LAYER, LAYER, 100),),
    ),
    OSInfo("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)"),
    (SSL, ZLIB, DJANGO, LODASH),
    warnings=("skipped unreadable file x",),
)
F_KEY = secret_finding(
    Secret(
        "private-key",
        "Private key",
        "Asymmetric private key",
        Severity.HIGH,
        "app/deploy/id_rsa",
        1,
        "----**********************",
        layer=LAYER,
        deleted=True,
    ),
    "oci:build/app:latest",
)

REPORT = ScanReport(
    INV,
    findings=(F_SSL, F_DJ, F_LO, F_KEY),
    suppressed=(Suppressed(F_ZL, Suppression("vex", "VEX not_affected: component_not_present")),),
    warnings=("ubuntu: no data",),
    db=DBProvenance(1, "2026-11-26T00:00:00Z", (DBSource("Debian", "2026-11-26T00:00:00Z", 33747),)),
    generated_at="2026-11-26T12:00:00Z",
    tool_version="0.1.0",
    scanners=("vuln", "secret"),
)


def rendered(fmt: str, report: ScanReport = REPORT) -> str:
    buf = io.StringIO()
    render(report, fmt, buf)
    return buf.getvalue()


def schema(name: str) -> dict[str, Any]:
    text = resources.files("garrison.report").joinpath("schemas", name).read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def test_json_report_shape() -> None:
    doc = json.loads(rendered("json"))
    assert doc["schema"] == "garrison.scan/v2"
    assert doc["scanners"] == ["vuln", "secret"]
    assert doc["generated_at"] == "2026-11-26T12:00:00Z"
    assert [(f["kind"], f["rule"]["id"]) for f in doc["findings"]] == [
        ("vulnerability", "CVE-2023-5678"),
        ("vulnerability", "CVE-2020-9402"),
        ("vulnerability", "CVE-2020-8203"),
        ("secret", "private-key"),
    ]
    dj = doc["findings"][1]
    assert dj["fingerprint"] == F_DJ.fingerprint and dj["severity"] == "HIGH"
    assert dj["subject"]["kind"] == "package" and dj["subject"]["package"] == DJANGO.purl
    assert set(dj["rule"]["aliases"]) == {"GHSA-3gh2-xw74-jmcw", "PYSEC-2020-35"}
    v = dj["vulnerability"]
    assert v["advisory_id"] == "GHSA-3gh2-xw74-jmcw" and v["merged_ids"] == ["PYSEC-2020-35"]
    assert v["kev"] is True and v["severity"] == "HIGH" and v["fixed_versions"] == ["2.2.11", "3.0.4"]
    assert v["match"]["scheme"] == "pep440"
    refs = {p["ref"] for p in doc["packages"]}
    assert all(f["vulnerability"]["package_ref"] in refs for f in doc["findings"] if f["kind"] == "vulnerability")
    key = doc["findings"][3]
    assert key["secret"] == {
        "rule_id": "private-key",
        "category": "Private key",
        "title": "Asymmetric private key",
        "severity": "HIGH",
        "path": "app/deploy/id_rsa",
        "line": 1,
        "layer": LAYER,
        "deleted": True,
        "match": "----**********************",
    }
    assert key["subject"] == {
        "kind": "file",
        "artifact": "oci:build/app:latest",
        "layer": LAYER,
        "path": "app/deploy/id_rsa",
        "line": 1,
    }
    assert doc["summary"]["by_severity"]["CRITICAL"] == 1 and doc["summary"]["suppressed"] == 1
    assert doc["summary"]["by_kind"] == {"vulnerability": 3, "secret": 1} and doc["summary"]["kev"] == 1
    assert doc["suppressed"][0]["suppression"]["by"] == "vex"
    assert doc["suppressed"][0]["vulnerability"]["vulnerability_id"] == "CVE-2023-45853"
    assert doc["warnings"] == ["skipped unreadable file x", "ubuntu: no data"]
    assert doc["database"]["sources"][0]["records"] == 33747
    assert doc["os"]["codename"] == "bookworm"


def test_inventory_json() -> None:
    buf = io.StringIO()
    render_inventory(INV, "json", buf)
    doc = json.loads(buf.getvalue())
    assert doc["schema"] == "garrison.inventory/v1"
    assert "findings" not in doc
    assert [p["name"] for p in doc["packages"]] == ["libssl3", "zlib1g", "lodash", "Django"]
    assert doc["packages"][0]["source_name"] == "openssl"


def test_sarif_is_valid_and_shaped_for_code_scanning() -> None:
    doc = json.loads(rendered("sarif"))
    errors = sorted(Draft4Validator(schema("sarif-schema-2.1.0.json")).iter_errors(doc), key=str)
    assert not errors, errors[:3]
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert sorted(r["id"] for r in rules) == ["CVE-2020-8203", "CVE-2020-9402", "CVE-2023-5678", "private-key"]
    by_id = {r["id"]: r for r in rules}
    assert by_id["CVE-2020-9402"]["properties"]["security-severity"] == "8.8"
    assert by_id["CVE-2020-8203"]["properties"]["security-severity"] == "9.5"  # no CVSS: from severity
    assert "known-exploited" in by_id["CVE-2020-9402"]["properties"]["tags"]
    assert by_id["CVE-2023-5678"]["help"]["text"]
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {
        "CVE-2023-5678": "warning",
        "CVE-2020-9402": "error",
        "CVE-2020-8203": "error",
        "private-key": "error",
    }
    fingerprints = [f.fingerprint for f in REPORT.findings]
    for res, fp in zip(run["results"], fingerprints, strict=True):
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["partialFingerprints"]["garrisonFinding/v2"] == fp
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]]
    assert uris[0] == "var/lib/dpkg/status" and uris[3] == "app/deploy/id_rsa"
    secret = run["results"][3]
    assert "secret" in by_id["private-key"]["properties"]["tags"]
    assert "deleted by an upper layer" in secret["message"]["text"]
    assert secret["properties"]["match"] == "----**********************"


def test_sarif_schema_rejects_garbage() -> None:
    """The vendored schema really validates (guards against an empty or permissive file)."""
    bad = json.loads(rendered("sarif"))
    bad["runs"][0]["results"][0]["level"] = "fatal"
    assert list(Draft4Validator(schema("sarif-schema-2.1.0.json")).iter_errors(bad))


def test_cyclonedx_is_valid_1_6() -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = rendered("cyclonedx")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    assert doc["specVersion"] == "1.6"
    assert doc["metadata"]["component"]["type"] == "container"
    comps = {c["bom-ref"]: c for c in doc["components"]}
    ssl = comps[SSL.purl]
    assert ssl["purl"] == SSL.purl
    props = {p["name"]: p["value"] for p in ssl["properties"]}
    assert props["garrison:layer:diff_id"] == LAYER and props["garrison:package:source_name"] == "openssl"
    vulns = {v["id"]: v for v in doc["vulnerabilities"]}
    assert set(vulns) == {"CVE-2023-5678", "CVE-2020-9402", "CVE-2020-8203", "CVE-2023-45853"}
    assert vulns["CVE-2020-9402"]["affects"][0]["ref"] == DJANGO.purl
    assert {r.get("severity") for r in vulns["CVE-2020-9402"]["ratings"]} >= {"high"}
    cvss = [r for r in vulns["CVE-2020-9402"]["ratings"] if "vector" in r]
    assert cvss == [{"vector": "AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", "method": "CVSSv31", "score": 8.8}]
    assert vulns["CVE-2023-45853"]["analysis"]["state"] == "not_affected"
    assert any(c["type"] == "operating-system" for c in doc["components"])


def test_cyclonedx_reads_back_with_the_reference_library() -> None:
    """The document is written as plain dicts for speed; the reference implementation must read it back
    into its own model with every component, purl, license and vulnerability intact."""
    import warnings

    from cyclonedx.model.bom import Bom

    text = rendered("cyclonedx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bom = Bom.from_json(json.loads(text))  # type: ignore[attr-defined]
    by_ref = {str(c.bom_ref): c for c in bom.components}
    for pkg in (SSL, ZLIB, DJANGO, LODASH):
        comp = by_ref[pkg.purl]
        assert (comp.name, comp.version, str(comp.purl)) == (pkg.name, pkg.version, pkg.purl)
    assert [str(lic.id) for lic in by_ref[SSL.purl].licenses] == ["Apache-2.0"]
    assert {v.id for v in bom.vulnerabilities} == {"CVE-2023-5678", "CVE-2020-9402", "CVE-2020-8203", "CVE-2023-45853"}
    assert str(bom.metadata.component.bom_ref) == "artifact"


def test_cyclonedx_inventory_is_valid() -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    buf = io.StringIO()
    render_inventory(INV, "cyclonedx", buf)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(buf.getvalue()) is None
    assert "vulnerabilities" not in json.loads(buf.getvalue())


def test_spdx_is_valid_2_3() -> None:
    buf = io.StringIO()
    render_inventory(INV, "spdx-json", buf)
    doc = json.loads(buf.getvalue())
    errors = list(Draft7Validator(schema("spdx-schema-2.3.json")).iter_errors(doc))
    assert not errors, errors[:3]
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["dataLicense"] == "CC0-1.0"
    assert doc["documentNamespace"].startswith("https://")
    ids = [p["SPDXID"] for p in doc["packages"]]
    assert len(ids) == len(set(ids)) == 6  # artifact, OS, 4 packages
    rels = doc["relationships"]
    assert rels[0] == {
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": doc["documentDescribes"][0],
    }
    assert sum(r["relationshipType"] == "CONTAINS" for r in rels) == 5
    pkgs = {p["name"]: p for p in doc["packages"]}
    assert pkgs["libssl3"]["externalRefs"][0]["referenceLocator"] == SSL.purl
    assert pkgs["libssl3"]["licenseDeclared"] == "Apache-2.0"
    assert pkgs["zlib1g"]["licenseDeclared"] == "NOASSERTION"  # free text is not an SPDX expression
    # two renders of one inventory get distinct namespaces
    again = io.StringIO()
    render_inventory(INV, "spdx-json", again)
    assert json.loads(again.getvalue())["documentNamespace"] != doc["documentNamespace"]


def test_spdx_schema_rejects_garbage() -> None:
    buf = io.StringIO()
    render_inventory(INV, "spdx-json", buf)
    doc = json.loads(buf.getvalue())
    doc["relationships"][0]["relationshipType"] = "LIKES"
    assert list(Draft7Validator(schema("spdx-schema-2.3.json")).iter_errors(doc))


def test_table_plain_when_not_a_tty() -> None:
    text = rendered("table")
    assert "\x1b[" not in text
    assert "Total: 4 (CRITICAL: 1, HIGH: 2, MEDIUM: 1, LOW: 0, NEGLIGIBLE: 0, UNKNOWN: 0)" in text
    assert "Known exploited: 1" in text and "Suppressed: 1" in text
    lines = text.splitlines()
    # grouped by package: the package name is printed once, on its first row
    assert sum("Django" in ln for ln in lines) == 1
    assert "HIGH KEV" in text and "(no fix)" in text and "3.0.11-1~deb12u2" in text
    assert "warning: ubuntu: no data" in text
    assert "Secrets: 1" in text and "app/deploy/id_rsa:1 (deleted)" in text and "private-key" in text


def test_table_inventory() -> None:
    buf = io.StringIO()
    render_inventory(INV, "table", buf)
    assert "4 packages" in buf.getvalue() and "openssl" in buf.getvalue()


def test_empty_report_renders_everywhere() -> None:
    empty = ScanReport(Inventory(Artifact("dir:/tmp/x", SourceKind.DIR), None, ()))
    for fmt in SCAN_FORMATS:
        assert rendered(fmt, empty)
    assert "Total: 0" in rendered("table", empty)
    assert set(INVENTORY_FORMATS) == {"table", "json", "cyclonedx", "spdx-json"}


def test_unknown_format() -> None:
    with pytest.raises(UsageError):
        rendered("xml")


def test_provenance_from_real_status() -> None:
    from garrison.report.model import provenance_from_status
    from garrison.vulndb.store import DBStatus, SourceStatus

    src = SourceStatus("PyPI", "file:///m/PyPI/all.zip", "2026-11-25T00:00:00Z", "ab", 7000, 0)
    st = DBStatus(
        path="/x.db",
        schema_version=1,
        built_at="2026-11-26T00:00:00Z",
        sources=(src,),
        advisories=1,
        affected=1,
        kev=0,
        ecosystems=("PyPI",),
    )
    prov = provenance_from_status(st)
    assert prov.sources == (DBSource("PyPI", "2026-11-25T00:00:00Z", 7000, "file:///m/PyPI/all.zip"),)
    assert prov.schema_version == 1


def test_random_uuid_is_a_version_4_uuid() -> None:
    import uuid

    from garrison.report.common import random_uuid

    seen = {random_uuid() for _ in range(200)}
    assert len(seen) == 200
    for text in seen:
        u = uuid.UUID(text)
        assert str(u) == text and u.version == 4 and u.variant == uuid.RFC_4122


def test_write_json_matches_the_standard_encoder() -> None:
    from garrison.report.common import write_json

    doc = {"name": "Jörg's café ✓", "n": [1, 2.5, None, True], "nested": {"empty": [], "obj": {}}, "q": '"\\'}
    buf = io.StringIO()
    write_json(doc, buf)
    assert buf.getvalue() == json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
