"""Pure parsing: OSV records (real ones from the mirror and hand-made edge cases), severities,
names and the KEV catalog."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from typing import Any

import pytest

from conftest import REAL, needs_mirror
from garrison.model.common import Severity
from garrison.model.ecosystem import normalize_name
from garrison.model.vuln import AffectedRange, RangeEvent
from garrison.vulndb.kev import parse_kev
from garrison.vulndb.osv import MAX_DETAILS, MalformedRecord, is_withdrawn, parse_record, severity_from_score
from garrison.vulndb.store import decode_group, encode_affected, encode_group


def _real(ecosystem: str, member: str) -> dict[str, Any]:
    with zipfile.ZipFile(REAL / "osv" / ecosystem / "all.zip") as zf:
        doc: dict[str, Any] = json.loads(zf.read(member))
    return doc


def _record(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "TEST-1",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"}]}],
            }
        ],
    }
    base.update(kw)
    return base


@needs_mirror
def test_real_npm_record_with_cvss_v3() -> None:
    parsed = parse_record(_real("npm", "NSWG-ECO-323.json"), "npm")
    adv = parsed.advisory
    assert adv.id == "NSWG-ECO-323" and adv.source == "npm"
    assert adv.cvss_score == 6.5 and adv.severity is Severity.MEDIUM
    assert adv.cvss_vectors == ("CVSS:3.0/AV:A/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",)
    (aff,) = parsed.affected
    assert (aff.ecosystem, aff.package_name) == ("npm", "http-proxy")
    assert aff.ranges == (
        AffectedRange("SEMVER", (RangeEvent("introduced", "0"), RangeEvent("last_affected", "0.6.6"))),
    )


@needs_mirror
def test_real_debian_record() -> None:
    parsed = parse_record(_real("Debian", "DEBIAN-CVE-2020-22054.json"), "Debian")
    assert parsed.advisory.aliases == ("CVE-2020-22054",)
    assert parsed.advisory.severity is Severity.UNKNOWN  # Debian records here carry no rating
    (aff,) = parsed.affected
    assert aff.ecosystem == "Debian:12" and aff.package_name == "ffmpeg"
    assert aff.ranges[0].events[-1] == RangeEvent("fixed", "7:4.3-2")
    assert parsed.advisory.references == ("https://security-tracker.debian.org/tracker/CVE-2020-22054",)


@needs_mirror
def test_real_rubygems_numeric_score() -> None:
    parsed = parse_record(_real("RubyGems", "GHSA-g982-9r8g-6qxw.json"), "RubyGems")
    assert parsed.advisory.cvss_score == 5.5 and parsed.advisory.severity is Severity.MEDIUM


@needs_mirror
def test_every_real_alpine_record_parses() -> None:
    with zipfile.ZipFile(REAL / "osv" / "Alpine" / "all.zip") as zf:
        names = zf.namelist()[:300]
        for n in names:
            parsed = parse_record(json.loads(zf.read(n)), "Alpine")
            assert all(a.ecosystem.startswith("Alpine:v") for a in parsed.affected)


@pytest.mark.parametrize(
    ("extra", "severity", "score"),
    [
        (
            {"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]},
            Severity.CRITICAL,
            9.8,
        ),
        (
            {
                "severity": [
                    {
                        "type": "CVSS_V4",
                        "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                    }
                ]
            },
            Severity.CRITICAL,
            9.3,
        ),
        ({"severity": [{"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"}]}, Severity.HIGH, 7.5),
        ({"severity": [{"type": "CVSS_V3", "score": "garbage"}]}, Severity.UNKNOWN, None),
        ({"database_specific": {"severity": "MODERATE"}}, Severity.MEDIUM, None),
        ({"database_specific": {"cvss_score": 3.1}}, Severity.LOW, 3.1),
        ({}, Severity.UNKNOWN, None),
    ],
)
def test_severity(extra: dict[str, Any], severity: Severity, score: float | None) -> None:
    adv = parse_record(_record(**extra)).advisory
    assert adv.severity is severity
    assert adv.cvss_score == score


def test_v3_preferred_over_v4_and_all_vectors_kept() -> None:
    rec = _record(
        severity=[
            {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"},
            {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N"},
        ]
    )
    adv = parse_record(rec).advisory
    assert adv.cvss_score == 3.7 and adv.severity is Severity.LOW
    assert len(adv.cvss_vectors) == 2 and adv.cvss_vectors[0].startswith("CVSS:3.1")


def test_ecosystem_specific_severity_and_debian_urgency() -> None:
    rec = _record()
    rec["affected"][0]["ecosystem_specific"] = {"severity": "HIGH"}
    assert parse_record(rec).advisory.severity is Severity.HIGH
    rec = _record()
    rec["affected"][0]["ecosystem_specific"] = {"urgency": "unimportant"}
    assert parse_record(rec).advisory.severity is Severity.NEGLIGIBLE
    rec["affected"][0]["ecosystem_specific"] = {"urgency": "not yet assigned"}
    assert parse_record(rec).advisory.severity is Severity.UNKNOWN


def test_rustsec_vector_in_affected_database_specific() -> None:
    rec = _record()
    rec["affected"][0]["database_specific"] = {"cvss": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}
    adv = parse_record(rec).advisory
    assert adv.cvss_score == 7.5 and adv.severity is Severity.HIGH


@pytest.mark.parametrize(
    ("score", "severity"),
    [(0.0, Severity.NEGLIGIBLE), (0.1, Severity.LOW), (3.9, Severity.LOW), (4.0, Severity.MEDIUM),
     (6.9, Severity.MEDIUM), (7.0, Severity.HIGH), (8.9, Severity.HIGH), (9.0, Severity.CRITICAL)],
)  # fmt: skip
def test_score_bands(score: float, severity: Severity) -> None:
    assert severity_from_score(score) is severity


def test_details_truncated_summary_kept() -> None:
    adv = parse_record(_record(summary="  short  ", details="x" * 10_000)).advisory
    assert adv.summary == "short"
    assert len(adv.details) == MAX_DETAILS and adv.details.endswith("…")


def test_withdrawn() -> None:
    assert is_withdrawn(_record(withdrawn="2024-02-01T00:00:00Z"))
    assert not is_withdrawn(_record())


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.update(id=5),
        lambda r: r.update(id=""),
        lambda r: r.update(affected="PyPI"),
        lambda r: r.update(aliases="CVE-1"),
        lambda r: r["affected"][0].pop("package"),
        lambda r: r["affected"][0]["package"].update(name=None),
        lambda r: r["affected"][0]["ranges"][0].update(type="WEIRD"),
        lambda r: r["affected"][0]["ranges"][0].update(events=[]),
        lambda r: r["affected"][0]["ranges"][0].update(events=[{"introduced": "0", "fixed": "1"}]),
        lambda r: r["affected"][0]["ranges"][0].update(events=[{"patched": "1"}]),
        lambda r: r["affected"][0]["ranges"][0].update(events=[{"fixed": 1}]),
        lambda r: r["affected"][0].update(versions=[1, 2]),
    ],
)
def test_malformed(mutate: Any) -> None:
    rec = _record()
    mutate(rec)
    with pytest.raises(MalformedRecord):
        parse_record(rec)
    with pytest.raises(MalformedRecord):
        parse_record(["not", "an", "object"])


def test_affected_encoding_round_trips() -> None:
    rec = _record()
    rec["affected"][0]["versions"] = ["1.0", "1.1"]
    rec["affected"][0]["ranges"].append({"type": "GIT", "repo": "x", "events": [{"introduced": "abc"}]})
    (aff,) = parse_record(rec).affected
    other = replace(aff, advisory_id="TEST-2", versions=())
    assert decode_group("PyPI", encode_group([encode_affected(aff), encode_affected(other)])) == (aff, other)


@pytest.mark.parametrize(
    ("ecosystem", "name", "normalized"),
    [
        ("PyPI", "Django", "django"),
        ("PyPI", "zope.interface", "zope-interface"),
        ("PyPI", "Foo__Bar-.baz", "foo-bar-baz"),
        ("npm", "JSONStream", "jsonstream"),
        ("npm", "@Babel/core", "@babel/core"),
        ("crates.io", "Serde_JSON", "serde-json"),
        ("NuGet", "Newtonsoft.Json", "newtonsoft.json"),
        ("Packagist", "Drupal/Core", "drupal/core"),
        ("Go", "github.com/BurntSushi/toml", "github.com/BurntSushi/toml"),
        ("Maven", "org.apache.logging.log4j:log4j-core", "org.apache.logging.log4j:log4j-core"),
        ("RubyGems", "RedCloth", "RedCloth"),
        ("Debian:12", "libssl3", "libssl3"),
        ("Alpine:v3.19", " openssl ", "openssl"),
    ],
)
def test_normalize_name(ecosystem: str, name: str, normalized: str) -> None:
    assert normalize_name(ecosystem, name) == normalized


@needs_mirror
def test_parse_kev() -> None:
    ids = parse_kev((REAL / "kev" / "known_exploited_vulnerabilities.json").read_bytes())
    assert len(ids) > 1000 and "CVE-2021-44228" in ids
    assert parse_kev(b'{"vulnerabilities": [{"cveID": "CVE-2024-0001"}, {"cveID": "junk"}, 5]}') == {"CVE-2024-0001"}
    for bad in (b"[]", b"{", b'{"vulnerabilities": 3}'):
        with pytest.raises(MalformedRecord):
            parse_kev(bad)
