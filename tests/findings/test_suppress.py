"""Ignore files (with expiry), OpenVEX suppression, --severity, --ignore-unfixed and --exit-code."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from garrison.errors import InputError
from garrison.findings.dedupe import dedupe
from garrison.findings.gate import should_fail
from garrison.findings.suppress import (
    SuppressOptions,
    load_ignore_file,
    load_openvex,
    parse_ignore_rules,
    parse_openvex,
    parse_severities,
    purl_matches,
    suppress,
)
from garrison.model import Advisory, Finding, Package, PackageType, Severity, Vulnerability
from garrison.model.secret import Secret, secret_finding
from garrison.model.vuln import vulnerability_finding

TODAY = dt.date(2026, 6, 1)

OPENSSL = Package(
    "libssl3",
    "3.0.9-1",
    PackageType.DEB,
    purl="pkg:deb/debian/libssl3@3.0.9-1?arch=amd64",
    source_name="openssl",
)
DJANGO = Package("Django", "2.2.10", PackageType.PYTHON, purl="pkg:pypi/django@2.2.10")


def finding(
    pkg: Package,
    vid: str,
    sev: Severity,
    fixed: tuple[str, ...] = ("9.9",),
    adv_id: str = "",
    aliases: tuple[str, ...] = (),
    merged: tuple[str, ...] = (),
) -> Finding[Vulnerability]:
    adv = Advisory(adv_id or vid, aliases=aliases or ((vid,) if adv_id else ()), severity=sev)
    return vulnerability_finding(Vulnerability(pkg, adv, vid, sev, fixed, merged_ids=merged), "test:image")


F_SSL = finding(OPENSSL, "CVE-2023-5678", Severity.MEDIUM, adv_id="DEBIAN-CVE-2023-5678")
F_SSL_UNFIXED = finding(OPENSSL, "CVE-2024-0001", Severity.LOW, fixed=())
F_DJ = finding(DJANGO, "CVE-2020-9402", Severity.HIGH, adv_id="GHSA-3gh2-xw74-jmcw", merged=("PYSEC-2020-35",))
F_DJ2 = finding(DJANGO, "CVE-2021-35042", Severity.CRITICAL, adv_id="GHSA-xpfp-f569-q3p2")
ALL = (F_SSL, F_SSL_UNFIXED, F_DJ, F_DJ2)


def kept_ids(opts: SuppressOptions) -> list[str]:
    return sorted(f.rule.id for f in suppress(ALL, opts).kept)


def test_no_filters_keep_everything() -> None:
    r = suppress(ALL, SuppressOptions(today=TODAY))
    assert r.kept == ALL and r.suppressed == ()


def test_ignore_unfixed() -> None:
    r = suppress(ALL, SuppressOptions(ignore_unfixed=True, today=TODAY))
    assert [s.finding for s in r.suppressed] == [F_SSL_UNFIXED]
    assert r.suppressed[0].suppression.by == "unfixed"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("HIGH,CRITICAL", ["CVE-2020-9402", "CVE-2021-35042"]),
        ("critical", ["CVE-2021-35042"]),
        ("MEDIUM+", ["CVE-2020-9402", "CVE-2021-35042", "CVE-2023-5678"]),
        (">=high", ["CVE-2020-9402", "CVE-2021-35042"]),
    ],
)
def test_severity_filter(text: str, expected: list[str]) -> None:
    assert kept_ids(SuppressOptions(severities=parse_severities(text), today=TODAY)) == expected


def test_bad_severity_is_input_error() -> None:
    with pytest.raises(InputError):
        parse_severities("SEVERE")


IGNORE_YAML = """
ignore:
  - id: CVE-2023-5678
    reason: not reachable
  - id: PYSEC-2020-35            # a merged id names the finding too
    package: pkg:pypi/django     # any version
    expires: 2026-12-31
    reason: isolated service
  - id: CVE-2021-35042
    expires: 2026-01-01          # expired: no longer applies
"""


def test_ignore_file_ids_aliases_packages_and_expiry(tmp_path: Path) -> None:
    p = tmp_path / ".garrisonignore.yaml"
    p.write_text(IGNORE_YAML)
    rules = load_ignore_file(p)
    r = suppress(ALL, SuppressOptions(ignore_rules=rules, today=TODAY))
    assert sorted(f.rule.id for f in r.kept) == ["CVE-2021-35042", "CVE-2024-0001"]
    reasons = {s.finding.rule.id: (s.suppression.by, s.suppression.reason) for s in r.suppressed}
    assert reasons == {
        "CVE-2023-5678": ("ignore-file", "not reachable"),
        "CVE-2020-9402": ("ignore-file", "isolated service"),
    }
    # the same file a year later: the django rule expired as well
    later = suppress(ALL, SuppressOptions(ignore_rules=rules, today=dt.date(2027, 1, 1)))
    assert "CVE-2020-9402" in {f.rule.id for f in later.kept}
    # the expiry day itself still applies
    last_day = suppress(ALL, SuppressOptions(ignore_rules=rules, today=dt.date(2026, 12, 31)))
    assert "CVE-2020-9402" not in {f.rule.id for f in last_day.kept}


def test_ignore_rule_by_package_name_or_source_name() -> None:
    rules = parse_ignore_rules("ignore:\n  - package: openssl\n")
    assert kept_ids(SuppressOptions(ignore_rules=rules, today=TODAY)) == ["CVE-2020-9402", "CVE-2021-35042"]
    wrong_version = parse_ignore_rules("ignore:\n  - package: pkg:pypi/django@3.0\n")
    assert len(kept_ids(SuppressOptions(ignore_rules=wrong_version, today=TODAY))) == 4


def test_trivy_style_ignore_file() -> None:
    rules = parse_ignore_rules(
        "vulnerabilities:\n  - id: CVE-2020-9402\n    purls: [pkg:pypi/django@2.2.10]\n"
        "    expired_at: 2030-01-01\n    statement: accepted\n"
    )
    assert rules[0].reason == "accepted" and rules[0].expires == dt.date(2030, 1, 1)
    assert "CVE-2020-9402" not in kept_ids(SuppressOptions(ignore_rules=rules, today=TODAY))


@pytest.mark.parametrize(
    "text",
    [
        "ignore: 3",
        "- a\n- b",
        "ignore:\n  - reason: nothing to match\n",
        "ignore:\n  - id: X\n    expires: someday\n",
        "ignore: [unclosed",
    ],
)
def test_bad_ignore_files(text: str) -> None:
    with pytest.raises(InputError):
        parse_ignore_rules(text)


def vex_doc(statements: list[dict[str, object]]) -> str:
    return json.dumps(
        {
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": "https://example.com/vex/1",
            "author": "security@example.com",
            "timestamp": "2026-05-01T00:00:00Z",
            "version": 1,
            "statements": statements,
        }
    )


def test_openvex_not_affected_and_fixed_suppress_affected_keeps(tmp_path: Path) -> None:
    p = tmp_path / "app.openvex.json"
    p.write_text(
        vex_doc(
            [
                {
                    "vulnerability": {"name": "CVE-2023-5678"},
                    "products": [
                        {
                            "@id": "pkg:oci/app?repository_url=127.0.0.1:5000/app",
                            "subcomponents": [{"@id": "pkg:deb/debian/libssl3@3.0.9-1"}],
                        }
                    ],
                    "status": "not_affected",
                    "justification": "vulnerable_code_not_in_execute_path",
                },
                {
                    "vulnerability": {"name": "GHSA-xpfp-f569-q3p2", "aliases": ["CVE-2021-35042"]},
                    "products": [{"@id": "pkg:pypi/django@2.2.10"}],
                    "status": "fixed",
                },
                {
                    "vulnerability": {"name": "CVE-2020-9402"},
                    "products": [{"@id": "pkg:pypi/django"}],
                    "status": "affected",
                    "action_statement": "upgrade",
                },
                {
                    "vulnerability": {"name": "CVE-2024-0001"},
                    "products": [{"@id": "pkg:deb/debian/libssl3@1.0"}],
                    "status": "not_affected",
                    "justification": "component_not_present",
                },
            ]
        )
    )
    stmts = load_openvex(p)
    r = suppress(ALL, SuppressOptions(vex=stmts, today=TODAY))
    assert sorted(f.rule.id for f in r.kept) == ["CVE-2020-9402", "CVE-2024-0001"]
    reasons: dict[str, str] = {s.finding.rule.id: s.suppression.reason for s in r.suppressed}
    assert reasons["CVE-2023-5678"] == "VEX not_affected: vulnerable_code_not_in_execute_path"
    assert reasons["CVE-2021-35042"].startswith("VEX fixed")
    assert all(s.suppression.by == "vex" for s in r.suppressed)


def test_openvex_latest_statement_wins() -> None:
    stmts = parse_openvex(
        vex_doc(
            [
                {
                    "vulnerability": {"name": "CVE-2020-9402"},
                    "products": [{"@id": "pkg:pypi/django"}],
                    "status": "not_affected",
                    "justification": "inline_mitigations_already_exist",
                    "timestamp": "2026-01-01T00:00:00Z",
                },
                {
                    "vulnerability": {"name": "CVE-2020-9402"},
                    "products": [{"@id": "pkg:pypi/django"}],
                    "status": "affected",
                    "timestamp": "2026-03-01T00:00:00Z",
                },
            ]
        )
    )
    assert "CVE-2020-9402" in kept_ids(SuppressOptions(vex=stmts, today=TODAY))


def test_openvex_v001_string_forms() -> None:
    doc = json.dumps(
        {
            "@context": "https://openvex.dev/ns",
            "statements": [
                {
                    "vulnerability": "CVE-2023-5678",
                    "products": ["pkg:deb/debian/libssl3@3.0.9-1?arch=amd64"],
                    "status": "not_affected",
                }
            ],
        }
    )
    assert "CVE-2023-5678" not in kept_ids(SuppressOptions(vex=parse_openvex(doc), today=TODAY))


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        json.dumps({"statements": []}),  # no openvex context
        vex_doc([{"vulnerability": {"name": "CVE-1"}, "products": [], "status": "maybe"}]),
        vex_doc([{"products": [], "status": "fixed"}]),
    ],
)
def test_bad_vex(text: str) -> None:
    with pytest.raises(InputError):
        parse_openvex(text)


@pytest.mark.parametrize(
    ("pattern", "purl", "ok"),
    [
        ("pkg:pypi/Django", "pkg:pypi/django@2.2.10", True),
        ("pkg:pypi/django_x", "pkg:pypi/django-x@1", True),
        ("pkg:pypi/django@2.2.10", "pkg:pypi/django@2.2.10", True),
        ("pkg:pypi/django@2.2.11", "pkg:pypi/django@2.2.10", False),
        ("pkg:npm/%40babel/core", "pkg:npm/%40babel/core@7.0.0", True),
        ("pkg:npm/core", "pkg:npm/%40babel/core@7.0.0", False),
        (
            "pkg:deb/debian/libssl3@3.0.9-1",
            "pkg:deb/debian/libssl3@3.0.9-1?arch=amd64&distro=debian-12",
            True,
        ),
        ("not a purl", "pkg:pypi/django@1", False),
        ("pkg:pypi/django", "", False),
    ],
)
def test_purl_matching(pattern: str, purl: str, ok: bool) -> None:
    assert purl_matches(pattern, purl) is ok


@pytest.mark.parametrize(
    ("threshold", "fails"),
    [
        (Severity.LOW, True),
        (Severity.HIGH, True),
        (Severity.CRITICAL, True),
    ],
)
def test_should_fail(threshold: Severity, fails: bool) -> None:
    assert should_fail(ALL, threshold) is fails


def test_should_fail_only_on_kept_findings() -> None:
    kept = suppress(ALL, SuppressOptions(severities=parse_severities("LOW,MEDIUM"), today=TODAY)).kept
    assert not should_fail(kept, Severity.HIGH)
    assert should_fail(kept, Severity.MEDIUM)
    assert not should_fail((), Severity.UNKNOWN)


# ------------------------------------------------------------------------------ every kind, one step

SECRET_AWS = secret_finding(
    Secret("aws-access-key-id", "AWS", "AWS access key ID", Severity.CRITICAL, "app/.env", 3, "AKIA****************"),
    "test:image",
)
SECRET_TEST = secret_finding(
    Secret("generic-password", "Generic", "Password assignment", Severity.MEDIUM, "app/tests/conf.py", 7, "hu******"),
    "test:image",
)


def test_one_step_suppresses_secrets_by_path_and_keeps_the_decision() -> None:
    rules = parse_ignore_rules(
        """
ignore:
  - id: generic-password
    paths: ["app/tests/*"]
    reason: test fixtures
    by: alice
    expires: 2026-12-31
""",
        "ign.yaml",
    )
    r = suppress((*ALL, SECRET_AWS, SECRET_TEST), SuppressOptions(ignore_rules=rules, today=TODAY))
    assert [s.finding for s in r.suppressed] == [SECRET_TEST]
    d = r.suppressed[0].suppression
    assert (d.by, d.reason, d.decided_by, d.expires) == ("ignore-file", "test fixtures", "alice", "2026-12-31")
    assert d.origin.startswith("ign.yaml")
    assert SECRET_AWS in r.kept and F_DJ in r.kept


def test_a_path_rule_does_not_match_another_path() -> None:
    rules = parse_ignore_rules("ignore:\n  - paths: ['app/tests/*']\n")
    r = suppress((SECRET_AWS,), SuppressOptions(ignore_rules=rules, today=TODAY))
    assert r.kept == (SECRET_AWS,)


def test_fingerprint_rule_suppresses_exactly_one_finding() -> None:
    rules = parse_ignore_rules(f"ignore:\n  - fingerprint: {F_DJ.fingerprint}\n")
    r = suppress(ALL, SuppressOptions(ignore_rules=rules, today=TODAY))
    assert [s.finding for s in r.suppressed] == [F_DJ]


def test_trivy_secrets_list_is_read() -> None:
    rules = parse_ignore_rules("secrets:\n  - id: aws-access-key-id\n    statement: rotated\n")
    r = suppress((SECRET_AWS, SECRET_TEST), SuppressOptions(ignore_rules=rules, today=TODAY))
    assert [s.finding for s in r.suppressed] == [SECRET_AWS]
    assert r.suppressed[0].suppression.reason == "rotated"


def test_severity_and_unfixed_apply_to_every_kind_as_they_should() -> None:
    opts = SuppressOptions(severities=parse_severities("CRITICAL"), ignore_unfixed=True, today=TODAY)
    r = suppress((SECRET_AWS, SECRET_TEST, F_SSL_UNFIXED), opts)
    assert r.kept == (SECRET_AWS,)  # a secret has no fix to wait for: --ignore-unfixed leaves it alone
    assert {s.finding: s.suppression.by for s in r.suppressed} == {SECRET_TEST: "severity", F_SSL_UNFIXED: "unfixed"}


def test_fingerprint_ignores_version_and_layer_but_not_path() -> None:
    from dataclasses import replace

    upgraded = finding(replace(DJANGO, version="2.2.11", layer="sha256:" + "1" * 64), "CVE-2020-9402", Severity.HIGH)
    assert upgraded.fingerprint == finding(DJANGO, "CVE-2020-9402", Severity.HIGH).fingerprint
    moved = finding(replace(DJANGO, locations=("other/METADATA",)), "CVE-2020-9402", Severity.HIGH)
    assert moved.fingerprint != upgraded.fingerprint
    assert SECRET_AWS.fingerprint != SECRET_TEST.fingerprint


def test_dedupe_keeps_one_per_fingerprint_the_most_severe() -> None:
    from dataclasses import replace

    louder = replace(SECRET_TEST, severity=Severity.HIGH)
    assert dedupe((SECRET_TEST, SECRET_AWS, louder, SECRET_AWS)) == (louder, SECRET_AWS)
    assert dedupe(ALL) == ALL
