"""Harbor's pluggable scanner API: the answers' shapes checked against the spec's schemas (written out
below from goharbor/pluggable-scanner-spec v1.1 and v1.2, api/spec/scanner-adapter-openapi-v1.2.yaml and
data/spec/SBOM.md), the
media-type negotiation, the roles and scopes, and hostile requests (wrong media types, bodies that are
not JSON or not the spec's, oversized bodies): a clean 4xx in Harbor's error body, nothing written.
The round trip with a real image in a real registry is test_harbor_e2e.py."""

from __future__ import annotations

import base64
import json
from typing import Any

import jsonschema
import pytest
from sqlalchemy import select
from tests.server.conftest import Server

from garrison.services import harbor
from garrison.store import tables

H = "/harbor/api/v1"
#: For tests of what does not depend on the database (negotiation, validation, roles): SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("db_kind", ["sqlite"], indirect=True)
DIGEST = "sha256:" + "ab" * 32
SCAN_TYPE = "application/vnd.scanner.adapter.scan.request+json; version=1.1"
PULL_SECRET = "robot$harbor+scan:Sup3rSecretPullToken"

# --- the spec's schemas (v1.1), as JSON Schema ---------------------------------------------------------

_STR = {"type": "string"}
SCANNER = {
    "type": "object",
    "required": ["name", "vendor", "version"],
    "properties": {"name": _STR, "vendor": _STR, "version": _STR},
    "additionalProperties": False,
}
METADATA = {
    "type": "object",
    "required": ["scanner", "capabilities"],
    "properties": {
        "scanner": SCANNER,
        "capabilities": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["consumes_mime_types", "produces_mime_types"],
                "properties": {
                    "type": {"enum": ["vulnerability", "sbom"]},
                    "consumes_mime_types": {"type": "array", "items": _STR, "minItems": 1},
                    "produces_mime_types": {"type": "array", "items": _STR, "minItems": 1},
                    # v1.2: for the sbom type, the SBOM formats it can make
                    "additional_attributes": {
                        "type": "object",
                        "properties": {
                            "sbom_media_types": {
                                "type": "array",
                                "items": {"enum": ["application/spdx+json", "application/vnd.cyclonedx+json"]},
                            }
                        },
                    },
                },
                "additionalProperties": False,
            },
        },
        "properties": {"type": "object", "additionalProperties": _STR},
    },
    "additionalProperties": False,
}
SCAN_RESPONSE = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "string", "minLength": 1}},
    "additionalProperties": False,
}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message"],
            "properties": {"message": {"type": "string", "minLength": 1}},
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}
SEVERITY = {"enum": ["Unknown", "Negligible", "Low", "Medium", "High", "Critical"]}
ARTIFACT = {
    "type": "object",
    "properties": {"repository": _STR, "digest": _STR, "tag": _STR, "mime_type": _STR},
    "additionalProperties": False,
}
ITEM = {
    "type": "object",
    "required": ["id", "package", "version", "severity"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "package": {"type": "string", "minLength": 1},
        "version": {"type": "string", "minLength": 1},
        "fix_version": _STR,
        "severity": SEVERITY,
        "description": _STR,
        "links": {"type": "array", "items": _STR},
        "preferred_cvss": {
            "type": "object",
            "properties": {
                "score_v3": {"type": "number"},
                "score_v2": {"type": "number"},
                "vector_v3": _STR,
                "vector_v2": _STR,
            },
            "additionalProperties": False,
        },
        "cwe_ids": {"type": "array", "items": _STR},
        # An object, as Harbor's converter reads it (the OpenAPI document draws key/value pairs).
        "vendor_attributes": {"type": "object"},
        # Not in the OpenAPI document; Harbor's VulnerabilityItem reads it.
        "layer": {
            "type": "object",
            "properties": {"digest": _STR, "diff_id": _STR},
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
REPORT = {
    "type": "object",
    "required": ["generated_at", "artifact", "scanner", "severity", "vulnerabilities"],
    "properties": {
        "generated_at": _STR,
        "artifact": ARTIFACT,
        "scanner": SCANNER,
        "severity": SEVERITY,
        "vulnerabilities": {"type": "array", "items": ITEM},
    },
    "additionalProperties": False,
}


#: v1.2's HarborSbomReport (data/spec/SBOM.md); ``sbom`` is the SBOM document itself.
SBOM_REPORT = {
    "type": "object",
    "required": ["generated_at", "artifact", "scanner", "media_type", "sbom"],
    "properties": {
        "generated_at": _STR,
        "artifact": ARTIFACT,
        "scanner": SCANNER,
        "vendor_attributes": {"type": "object"},
        "media_type": {"enum": ["application/spdx+json", "application/vnd.cyclonedx+json"]},
        "sbom": {"type": "object"},
    },
    "additionalProperties": False,
}


def check(schema: dict[str, Any], doc: Any) -> None:
    jsonschema.validate(doc, schema)


def scan_body(url: str = "https://registry.example:5000", **artifact: Any) -> dict[str, Any]:
    basic = base64.b64encode(PULL_SECRET.encode()).decode()
    return {
        "registry": {"url": url, "authorization": f"Basic {basic}"},
        "artifact": {"repository": "library/app", "digest": DIGEST, "tag": "1.0", **artifact},
    }


def post_scan(server: Server, body: Any, role: str = "admin", content_type: str = SCAN_TYPE) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**server.headers(role), "Content-Type": content_type}
    return server.client.post(f"{H}/scan", content=raw, headers=headers)


def _scans(server: Server) -> int:
    with server.store.engine.connect() as conn:
        return len(conn.execute(select(tables.metadata.tables["scans"])).all())


# --- metadata --------------------------------------------------------------------------------------


@SQLITE_ONLY
def test_metadata_answers_the_spec_shape_in_the_version_asked(server: Server) -> None:
    for accept, version in (("", "1.1"), ("*/*", "1.1"), (f"{harbor.METADATA}; version=1.0", "1.0")):
        r = server.client.get(f"{H}/metadata", headers={**server.headers("agent"), "Accept": accept})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == f"{harbor.METADATA}; version={version}"
        doc = r.json()
        check(METADATA, doc)
        assert doc["scanner"]["name"] == "garrison"
        cap, *rest = doc["capabilities"]
        if version == "1.1":  # typed capabilities, and the SBOM one (v1.2)
            (sbom,) = rest
            assert sbom["type"] == "sbom" and sbom["consumes_mime_types"] == cap["consumes_mime_types"]
            assert sbom["produces_mime_types"] == ["application/vnd.security.sbom.report+json; version=1.0"]
            assert set(sbom["additional_attributes"]["sbom_media_types"]) == {
                "application/spdx+json",
                "application/vnd.cyclonedx+json",
            }
        else:
            assert rest == []
        assert set(cap["consumes_mime_types"]) == {
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        }
        assert set(cap["produces_mime_types"]) == {
            "application/vnd.security.vulnerability.report; version=1.1",
            "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0",
        }
        assert ("type" in cap) == (version == "1.1")
        assert doc["properties"]["harbor.scanner-adapter/scanner-type"] == "os-package-vulnerability"
    r = server.client.get(f"{H}/metadata", headers={**server.headers("admin"), "Accept": "text/html"})
    assert r.status_code == 406 and r.headers["content-type"] == harbor.ERROR
    check(ERROR, r.json())


@SQLITE_ONLY
def test_only_admins_and_agents_with_a_token(server: Server) -> None:
    assert server.client.get(f"{H}/metadata").status_code == 401
    assert server.client.get(f"{H}/metadata", headers={"Authorization": "Bearer garrison_nope"}).status_code == 401
    for role in ("security-admin", "security-reader"):
        for r in (
            server.client.get(f"{H}/metadata", headers=server.headers(role)),
            post_scan(server, scan_body(), role=role),
            server.client.get(f"{H}/scan/1/report", headers=server.headers(role)),
        ):
            assert r.status_code == 403 and r.headers["content-type"] == harbor.ERROR
            check(ERROR, r.json())
    assert post_scan(server, scan_body(), role="agent").status_code == 403  # an agent of no registry
    assert _scans(server) == 0


# --- scan requests ---------------------------------------------------------------------------------


def test_a_scan_request_is_only_queued_and_its_secret_sealed(server: Server) -> None:
    server.queue.stop(grace=5.0)  # nothing runs: the answer must come from queueing alone
    r = post_scan(server, scan_body())
    assert r.status_code == 202, r.text
    assert r.headers["content-type"] == harbor.SCAN_RESPONSE
    check(SCAN_RESPONSE, r.json())
    scan_id = r.json()["id"]
    got = server.client.get(f"/api/v1/scans/{scan_id}", headers=server.headers("security-reader")).json()
    assert got["status"] == "queued" and got["source"] == "harbor"
    assert got["reference"] == f"registry.example:5000/library/app:1.0@{DIGEST}"
    report = server.client.get(f"{H}/scan/{scan_id}/report", headers=server.headers("admin"), follow_redirects=False)
    assert report.status_code == 302 and report.headers["refresh-after"] == str(harbor.REFRESH_AFTER)
    assert report.headers["location"] == f"{H}/scan/{scan_id}/report" and report.content == b""
    # the pull secret is nowhere in clear: not in answers, not in the audit log, not in any table
    basic = base64.b64encode(PULL_SECRET.encode()).decode()
    audit = server.client.get("/api/v1/audit-log", headers=server.headers("admin")).text
    with server.store.engine.connect() as conn:
        rows = [str(tuple(row)) for t in tables.metadata.sorted_tables for row in conn.execute(select(t))]
    for text in (r.text, json.dumps(got), audit, *rows):
        assert basic not in text and "Sup3rSecret" not in text


#: (body or raw bytes, content type, expected status) of requests refused before anything is stored.
HOSTILE: list[tuple[Any, str, int]] = [
    (scan_body(), "text/plain", 415),
    (scan_body(), "application/vnd.scanner.adapter.scan.request+json; version=2.0", 415),
    (scan_body(), "application/xml", 415),
    (scan_body(), "", 415),
    (b"{not json", SCAN_TYPE, 400),
    (b"\xff\xfe\x00", SCAN_TYPE, 400),
    (b"[1, 2]", SCAN_TYPE, 400),
    ({"registry": "https://r", "artifact": {}}, SCAN_TYPE, 400),
    ({"registry": {"url": 5}, "artifact": {"repository": "a", "digest": DIGEST}}, SCAN_TYPE, 400),
    ({**scan_body(), "enabled_capabilities": "all"}, SCAN_TYPE, 400),
    ({"artifact": {"repository": "a", "digest": DIGEST}}, SCAN_TYPE, 422),
    (scan_body(url="ftp://registry.example"), SCAN_TYPE, 422),
    (scan_body(url="https://registry.example/v2/evil"), SCAN_TYPE, 422),
    (scan_body(url="https://user:pw@registry.example"), SCAN_TYPE, 422),
    (scan_body(url="http://registry.example:5000"), SCAN_TYPE, 422),  # plain HTTP, not a known registry
    (scan_body(repository="../../etc/passwd"), SCAN_TYPE, 422),
    (scan_body(repository="Library/App"), SCAN_TYPE, 422),
    (scan_body(repository=""), SCAN_TYPE, 422),
    (scan_body(digest="sha256:1234"), SCAN_TYPE, 422),
    (scan_body(digest="md5:" + "0" * 32), SCAN_TYPE, 422),
    (scan_body(digest=""), SCAN_TYPE, 422),
    (scan_body(tag="a b"), SCAN_TYPE, 422),
    (scan_body(mime_type="application/vnd.oci.image.index.v1+json"), SCAN_TYPE, 422),
    ({**scan_body(), "enabled_capabilities": [{"type": "malware"}]}, SCAN_TYPE, 422),
    (
        {**scan_body(), "enabled_capabilities": [{"type": "sbom", "parameters": {"sbom_media_types": ["text/spdx"]}}]},
        SCAN_TYPE,
        422,
    ),
    (
        {**scan_body(), "enabled_capabilities": [{"type": "sbom", "parameters": {"sbom_media_types": "all"}}]},
        SCAN_TYPE,
        400,
    ),
    ({**scan_body(), "enabled_capabilities": [{"type": "sbom", "parameters": []}]}, SCAN_TYPE, 400),
    (
        {"registry": {"url": "https://r.example", "authorization": "Basic x\r\nX-Injected: 1"}, "artifact": {}},
        SCAN_TYPE,
        422,
    ),
]


@SQLITE_ONLY
def test_hostile_scan_requests_get_a_clean_error_and_store_nothing(server: Server) -> None:
    for body, ctype, status in HOSTILE:
        r = post_scan(server, body, content_type=ctype)
        where = f"{str(body)[:80]} {ctype!r}"
        assert r.status_code == status, f"{where}: {r.status_code} {r.text}"
        assert r.headers["content-type"] == harbor.ERROR, where
        check(ERROR, r.json())
    big = json.dumps({**scan_body(), "pad": "x" * 200_000}).encode()
    r = post_scan(server, big)
    assert r.status_code == 413
    assert _scans(server) == 0


@SQLITE_ONLY
def test_capabilities_and_plain_json_are_accepted(server: Server) -> None:
    server.queue.stop(grace=5.0)
    body = {**scan_body(), "enabled_capabilities": [{"type": "vulnerability"}, {"type": "sbom"}]}
    assert post_scan(server, body).status_code == 202
    # what Harbor 2.11 sends for "Generate SBOM" (spec v1.2)
    sbom_only = {
        **scan_body(),
        "enabled_capabilities": [
            {
                "type": "sbom",
                "produces_mime_types": ["application/vnd.security.sbom.report+json; version=1.0"],
                "parameters": {"sbom_media_types": ["application/spdx+json"]},
            }
        ],
    }
    assert post_scan(server, sbom_only).status_code == 202
    assert post_scan(server, scan_body(), content_type="application/json").status_code == 202
    v10 = "application/vnd.scanner.adapter.scan.request+json; version=1.0"
    assert post_scan(server, scan_body(mime_type=harbor.CONSUMES[1]), content_type=v10).status_code == 202
    assert _scans(server) == 4


# --- reports ---------------------------------------------------------------------------------------


def test_reports_of_unknown_or_foreign_scans_are_404(server: Server) -> None:
    server.queue.stop(grace=5.0)
    api = server.client.post(
        "/api/v1/scans", json={"reference": f"registry.example/app@{DIGEST}"}, headers=server.headers("admin")
    )
    assert api.status_code == 202, api.text
    for scan_id in ("999999", "abc", "-1", "1e3", "9" * 40, str(api.json()["id"])):  # the last: not Harbor's
        r = server.client.get(f"{H}/scan/{scan_id}/report", headers=server.headers("admin"))
        assert r.status_code == 404, (scan_id, r.text)
        assert r.headers["content-type"] == harbor.ERROR
        check(ERROR, r.json())
    # an agent sees only its own registry's scans
    mine = post_scan(server, scan_body()).json()["id"]
    r = server.client.get(f"{H}/scan/{mine}/report", headers=server.headers("agent"), follow_redirects=False)
    assert r.status_code == 404


@SQLITE_ONLY
def test_report_media_types_are_negotiated(server: Server) -> None:
    server.queue.stop(grace=5.0)
    scan_id = post_scan(server, scan_body()).json()["id"]
    url = f"{H}/scan/{scan_id}/report"
    for accept in (
        "application/vnd.security.vulnerability.report; version=1.1",
        "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0",
        "text/html;q=0.9, application/vnd.security.vulnerability.report;version=1.1",
        "*/*",
        "",
    ):
        r = server.client.get(url, headers={**server.headers("admin"), "Accept": accept}, follow_redirects=False)
        assert r.status_code == 302, accept
    sbom = {**server.headers("admin"), "Accept": "application/vnd.security.sbom.report+json; version=1.0"}
    for fmt in ("application/spdx+json", "application/vnd.cyclonedx+json"):
        r = server.client.get(url, headers=sbom, params={"sbom_media_type": fmt}, follow_redirects=False)
        assert r.status_code == 302, fmt
    for params in ({}, {"sbom_media_type": "text/spdx"}, {"sbom_media_type": "x" * 5000}):
        r = server.client.get(url, headers=sbom, params=params)  # the spec's 400 for a missing or unknown one
        assert r.status_code == 400 and r.headers["content-type"] == harbor.ERROR, (str(params)[:60], r.text)
        check(ERROR, r.json())
    for accept, status in (
        ("application/vnd.security.sbom.report+json; version=2.0", 406),
        ("application/vnd.scanner.adapter.vuln.report.raw", 501),
        ("application/vnd.security.vulnerability.report; version=9.9", 406),
        ("text/html", 406),
        ("application/vnd.security.vulnerability.report; version=1.1; q=0", 406),
    ):
        r = server.client.get(url, headers={**server.headers("admin"), "Accept": accept})
        assert r.status_code == status, (accept, r.text)
        check(ERROR, r.json())


def test_media_type_parsing() -> None:
    mt = harbor.parse_media_type('Application/VND.Security.Vulnerability.Report ; Version="1.1"')
    assert mt.essence == "application/vnd.security.vulnerability.report" and mt.version == "1.1"
    assert harbor.parse_media_type("garbage").essence == ""
    assert harbor.parse_media_type("a b/c").essence == ""
    assert harbor.report_type("application/vnd.scanner.adapter.vuln.report.harbor+json") == harbor.REPORT_HARBOR


def test_cvss_vectors_become_preferred_cvss_and_harbors_vendor_attribute() -> None:
    """Scores are the vectors' base scores (9.8 and 7.5 are the values NVD publishes for these vectors);
    v4 has no place in ``preferred_cvss``; an unknown prefix is skipped; the first vector of a version wins."""
    v3 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    v2 = "AV:N/AC:L/Au:N/C:P/I:P/A:P"
    v4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
    preferred, entry = harbor._cvss([v4, "CVSS:9.9/X", v3, "CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", v2])
    assert preferred == {"vector_v3": v3, "score_v3": 9.8, "vector_v2": v2, "score_v2": 7.5}
    assert entry["V3Vector"] == v3 and entry["V3Score"] == 9.8 and entry["V2Score"] == 7.5
    assert entry["V4Vector"] == v4 and "score_v4" not in preferred
    assert harbor._cvss([]) == ({}, {})
