"""Table tests for OSV matching semantics, with the real version schemes and a real advisory database
built from the test records (tests/support/osvdb.py: OSV JSON → ``vulndb/build.py`` → SQLite), so every
case goes through the rows, packed ranges and bounds a scan reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from tests.support.osvdb import build_test_db

from garrison.matching.ecosystem import Lookup, debian_source_version, lookup_for, os_target
from garrison.matching.matcher import match_inventory
from garrison.model import Advisory, Artifact, Inventory, OSInfo, Package, PackageType, Severity, SourceKind
from garrison.model.vuln import Affected, AffectedRange, RangeEvent
from garrison.vulndb.store import AdvisoryDB, Candidates


class CountingDB(AdvisoryDB):
    """The real database, recording which (ecosystem, name) rows the matcher asks for."""

    queries: list[tuple[str, str]]

    def candidates(self, ecosystem: str, names: Iterable[str]) -> dict[str, Candidates]:
        wanted = list(names)
        self.queries = [*getattr(self, "queries", []), *((ecosystem, n) for n in wanted)]
        return super().candidates(ecosystem, wanted)


MakeDB = Callable[..., CountingDB]


@pytest.fixture
def make_db(tmp_path: Path) -> Iterator[MakeDB]:
    """``make_db(affected, advisories=(), kev=())``: a database of those records, opened."""
    opened: list[AdvisoryDB] = []

    def make(affected: Iterable[Affected], advisories: Iterable[Advisory] = (), kev: Iterable[str] = ()) -> CountingDB:
        db = build_test_db(tmp_path / f"db{len(opened)}", affected, advisories, kev, db_class=CountingDB)
        assert isinstance(db, CountingDB)
        db.queries = []
        opened.append(db)
        return db

    yield make
    for db in opened:
        db.close()


def rng(*events: tuple[str, str], type_: str = "ECOSYSTEM") -> AffectedRange:
    return AffectedRange(type_, tuple(RangeEvent(k, v) for k, v in events))


def aff(adv: str, eco: str, name: str, *ranges: AffectedRange, versions: tuple[str, ...] = ()) -> Affected:
    return Affected(adv, eco, name, ranges, versions)


DEB12 = OSInfo("debian", "12", "bookworm")


def inv(*pkgs: Package, os: OSInfo | None = DEB12) -> Inventory:
    return Inventory(Artifact("test", SourceKind.DIR), os, tuple(pkgs))


def deb(name: str, version: str, source: str = "", source_version: str = "") -> Package:
    return Package(
        name,
        version,
        PackageType.DEB,
        purl=f"pkg:deb/debian/{name}@{version}",
        source_name=source,
        source_version=source_version,
    )


def py(name: str, version: str) -> Package:
    return Package(name, version, PackageType.PYTHON, purl=f"pkg:pypi/{name.lower()}@{version}")


def npm(name: str, version: str) -> Package:
    return Package(name, version, PackageType.NPM, purl=f"pkg:npm/{name}@{version}")


def ids(result_findings: Iterable[object]) -> list[str]:
    return sorted(f.vulnerability_id for f in result_findings)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- dpkg table

DPKG_CASES = [
    # (installed source version, range events, affected?, fixed versions reported)
    ("1.2-3", [("introduced", "0"), ("fixed", "1.2-3+deb12u1")], True, ("1.2-3+deb12u1",)),
    ("1.2-3+deb12u1", [("introduced", "0"), ("fixed", "1.2-3+deb12u1")], False, ()),
    ("1.2-3+deb12u2", [("introduced", "0"), ("fixed", "1.2-3+deb12u1")], False, ()),
    # epochs dominate: 1:0.9 > 2.0
    ("1:0.9-1", [("introduced", "0"), ("fixed", "2.0-1")], False, ()),
    ("0.9-1", [("introduced", "0"), ("fixed", "1:0.1-1")], True, ("1:0.1-1",)),
    # tilde pre-releases sort before the release
    ("3.0.11-1~deb12u1", [("introduced", "0"), ("fixed", "3.0.11-1~deb12u2")], True, ("3.0.11-1~deb12u2",)),
    ("3.0.11-1", [("introduced", "0"), ("fixed", "3.0.11-1~deb12u2")], False, ()),
    ("2.0~rc1-1", [("introduced", "0"), ("fixed", "2.0-1")], True, ("2.0-1",)),
    # introduced later than installed
    ("1.0-1", [("introduced", "1.5-1"), ("fixed", "2.0-1")], False, ()),
    # last_affected is inclusive
    ("2.0-1", [("introduced", "1.0-1"), ("last_affected", "2.0-1")], True, ()),
    ("2.0-2", [("introduced", "1.0-1"), ("last_affected", "2.0-1")], False, ()),
    # two intervals in one range; events given out of order on purpose
    (
        "2.1-1",
        [("fixed", "2.3-1"), ("introduced", "2.0-1"), ("introduced", "1.0-1"), ("fixed", "1.5-1")],
        True,
        ("2.3-1",),
    ),
    (
        "1.7-1",
        [("fixed", "2.3-1"), ("introduced", "2.0-1"), ("introduced", "1.0-1"), ("fixed", "1.5-1")],
        False,
        (),
    ),
    (
        "1.2-1",
        [("introduced", "1.0-1"), ("fixed", "1.5-1"), ("introduced", "2.0-1"), ("fixed", "2.3-1")],
        True,
        ("1.5-1", "2.3-1"),
    ),
    # no fix yet
    ("9.9-1", [("introduced", "0")], True, ()),
    # limit caps the range
    ("5.0-1", [("introduced", "0"), ("limit", "4.0-1")], False, ()),
    ("3.0-1", [("introduced", "0"), ("limit", "4.0-1")], True, ()),
]


@pytest.mark.parametrize(("installed", "events", "affected", "fixed"), DPKG_CASES)
def test_dpkg_ranges(
    installed: str, events: list[tuple[str, str]], affected: bool, fixed: tuple[str, ...], make_db: MakeDB
) -> None:
    db = make_db(
        [aff("DEBIAN-CVE-2024-0001", "Debian:12", "src", rng(*events))],
        [Advisory("DEBIAN-CVE-2024-0001", aliases=("CVE-2024-0001",), severity=Severity.HIGH)],
    )
    res = match_inventory(inv(deb("bin", installed, "src", installed)), db)
    assert bool(res.findings) is affected
    if affected:
        (f,) = res.findings
        assert f.fixed_versions == fixed
        assert f.vulnerability_id == "CVE-2024-0001"
        assert f.severity is Severity.HIGH
        assert f.match is not None and f.match.scheme == "dpkg" and f.match.ecosystem == "Debian:12"


def test_binnmu_binary_is_matched_by_source_version(make_db: MakeDB) -> None:
    """libfoo1 1.2-3+b1 is a rebuild of source foo 1.2-3: still vulnerable to a fix in 1.2-3+deb12u1."""
    db = make_db([aff("DEBIAN-CVE-2024-1", "Debian:12", "foo", rng(("introduced", "0"), ("fixed", "1.2-3+deb12u1")))])
    explicit = deb("libfoo1", "1.2-3+b1", "foo", "1.2-3")
    derived = deb("libfoo1", "1.2-3+b1", "foo")  # analyzer gave no source version
    res = match_inventory(inv(explicit, derived), db)
    assert [f.package for f in res.findings] == [explicit, derived]
    assert {f.match.searched_version for f in res.findings if f.match} == {"1.2-3"}
    assert all(f.match and f.match.searched_name == "foo" for f in res.findings)
    assert debian_source_version(derived) == "1.2-3"


def test_binary_named_differently_from_source_is_looked_up_by_source(make_db: MakeDB) -> None:
    db = make_db(
        [
            aff(
                "DEBIAN-CVE-2023-5678",
                "Debian:12",
                "openssl",
                rng(("introduced", "0"), ("fixed", "3.0.11-1~deb12u2")),
            )
        ]
    )
    res = match_inventory(inv(deb("libssl3", "3.0.9-1", "openssl", "3.0.9-1"), deb("openssl", "3.0.11-1")), db)
    assert [f.package.name for f in res.findings] == ["libssl3"]
    assert ("Debian:12", "libssl3") not in db.queries


def test_one_query_per_distinct_package(make_db: MakeDB) -> None:
    db = make_db([])
    pkgs = [deb(f"lib{i}", "1.0-1", "shared", "1.0-1") for i in range(50)]
    match_inventory(inv(*pkgs), db)
    assert db.queries == [("Debian:12", "shared")]


def test_several_ranges_any_matches_and_git_ranges_are_ignored(make_db: MakeDB) -> None:
    a = aff(
        "GHSA-aaaa",
        "PyPI",
        "django",
        rng(("introduced", "0"), ("fixed", "deadbeef"), type_="GIT"),
        rng(("introduced", "3.0"), ("fixed", "3.0.5")),
        rng(("introduced", "2.2"), ("fixed", "2.2.13")),
    )
    res = match_inventory(inv(py("Django", "2.2.10"), os=None), make_db([a]))
    (f,) = res.findings
    assert f.fixed_versions == ("2.2.13",)
    assert f.match is not None and f.match.matched_range == "introduced 2.2, fixed 2.2.13"
    only_git = aff("GHSA-bbbb", "PyPI", "django", rng(("introduced", "0"), type_="GIT"))
    assert match_inventory(inv(py("Django", "2.2.10"), os=None), make_db([only_git])).findings == ()


def test_semver_ranges_with_prereleases(make_db: MakeDB) -> None:
    a = aff("GHSA-npm1", "npm", "lodash", rng(("introduced", "0"), ("fixed", "4.17.21"), type_="SEMVER"))
    res = match_inventory(
        inv(npm("lodash", "4.17.15"), npm("lodash", "4.17.21"), npm("lodash", "4.17.21-rc.1"), os=None),
        make_db([a]),
    )
    assert [f.package.version for f in res.findings] == ["4.17.15", "4.17.21-rc.1"]


def test_pep440_normalisation_and_prereleases(make_db: MakeDB) -> None:
    a = aff("PYSEC-1", "PyPI", "jinja2", rng(("introduced", "0"), ("fixed", "2.10.1")))
    res = match_inventory(
        inv(py("Jinja2", "2.10"), py("jinja2", "2.10.1rc1"), py("jinja2", "2.10.1"), os=None), make_db([a])
    )
    assert [f.package.version for f in res.findings] == ["2.10", "2.10.1rc1"]


def test_versions_list(make_db: MakeDB) -> None:
    a = aff("GHSA-list", "PyPI", "requests", versions=("2.19.0", "2.19.1"))
    res = match_inventory(inv(py("requests", "2.19.1"), py("requests", "2.20.0"), os=None), make_db([a]))
    (f,) = res.findings
    assert f.package.version == "2.19.1"
    assert f.match is not None and f.match.matched_range == "versions list"
    assert f.fixed_versions == ()


def test_alias_merge_ghsa_and_pysec_are_one_finding(make_db: MakeDB) -> None:
    ghsa = Advisory("GHSA-x1", aliases=("CVE-2019-10906", "PYSEC-2019-217"), severity=Severity.HIGH)
    pysec = Advisory("PYSEC-2019-217", aliases=("CVE-2019-10906", "GHSA-x1"), severity=Severity.UNKNOWN)
    other = Advisory("GHSA-other", aliases=("CVE-2020-28493",), severity=Severity.MEDIUM)
    db = make_db(
        [
            aff("GHSA-x1", "PyPI", "jinja2", rng(("introduced", "0"), ("fixed", "2.10.1"))),
            aff("PYSEC-2019-217", "PyPI", "jinja2", rng(("introduced", "0"), ("fixed", "2.10.1"))),
            aff("GHSA-other", "PyPI", "jinja2", rng(("introduced", "0"), ("fixed", "2.11.3"))),
        ],
        [ghsa, pysec, other],
        kev=["CVE-2019-10906"],
    )
    res = match_inventory(inv(py("Jinja2", "2.10"), os=None), db)
    assert ids(res.findings) == ["CVE-2019-10906", "CVE-2020-28493"]
    merged = next(f for f in res.findings if f.vulnerability_id == "CVE-2019-10906")
    assert merged.advisory.id == "GHSA-x1"  # the rated record wins
    assert merged.merged_ids == ("PYSEC-2019-217",)
    assert merged.severity is Severity.HIGH
    assert merged.kev is True
    assert merged.fixed_versions == ("2.10.1",)
    assert next(f for f in res.findings if f.vulnerability_id == "CVE-2020-28493").kev is False


def test_alias_merge_is_transitive_without_a_shared_cve(make_db: MakeDB) -> None:
    a = Advisory("GHSA-a", aliases=("PYSEC-b",))
    b = Advisory("PYSEC-b", aliases=("OSV-c",))
    c = Advisory("OSV-c")
    db = make_db([aff(x.id, "PyPI", "pkg", rng(("introduced", "0"))) for x in (a, b, c)], [a, b, c])
    (f,) = match_inventory(inv(py("pkg", "1.0"), os=None), db).findings
    assert f.vulnerability_id == "GHSA-a" and set(f.merged_ids) == {"PYSEC-b", "OSV-c"}


def test_unparseable_installed_version_is_reported_not_raised(make_db: MakeDB) -> None:
    a = aff("GHSA-1", "PyPI", "weird", rng(("introduced", "0"), ("fixed", "2.0")))
    bad = py("weird", "not a version!!")
    res = match_inventory(inv(bad, os=None), make_db([a]))
    assert res.findings == ()
    assert res.not_comparable == (bad,)
    assert any("not comparable" in w for w in res.warnings)


def test_unparseable_advisory_version_skips_that_range_only(make_db: MakeDB) -> None:
    db = make_db(
        [
            aff("GHSA-bad", "PyPI", "pkg", rng(("introduced", "0"), ("fixed", "garbage version"))),
            aff("GHSA-good", "PyPI", "pkg", rng(("introduced", "0"), ("fixed", "2.0"))),
        ]
    )
    res = match_inventory(inv(py("pkg", "1.0"), os=None), db)
    assert ids(res.findings) == ["GHSA-good"]
    assert any("GHSA-bad" in w for w in res.warnings)


@pytest.mark.parametrize(
    ("os", "ecosystem"),
    [
        (OSInfo("debian", "12"), "Debian:12"),
        (OSInfo("debian", "12.5"), "Debian:12"),
        (OSInfo("alpine", "3.19.1"), "Alpine:v3.19"),
        (OSInfo("ubuntu", "22.04"), ""),
        (OSInfo("debian", ""), ""),
        (None, ""),
    ],
)
def test_os_target(os: OSInfo | None, ecosystem: str) -> None:
    t = os_target(os)
    assert t.ecosystem == ecosystem
    assert bool(t.reason) is (not ecosystem)


def test_alpine_is_keyed_by_origin(make_db: MakeDB) -> None:
    pkg = Package("libcrypto3", "3.1.4-r5", PackageType.APK, source_name="openssl")
    assert lookup_for(pkg, os_target(OSInfo("alpine", "3.19.1"))) == Lookup("Alpine:v3.19", "openssl", "3.1.4-r5")
    db = make_db([aff("ALPINE-CVE-2024-1", "Alpine:v3.19", "openssl", rng(("introduced", "0"), ("fixed", "3.1.4-r6")))])
    res = match_inventory(inv(pkg, os=OSInfo("alpine", "3.19.1")), db)
    assert [f.fixed_versions for f in res.findings] == [("3.1.4-r6",)]


def test_distribution_without_data_is_a_warning(make_db: MakeDB) -> None:
    db = make_db([])
    res = match_inventory(inv(deb("bash", "5.1-6ubuntu1"), py("requests", "2.19.1"), os=OSInfo("ubuntu", "22.04")), db)
    assert res.findings == ()
    assert any("ubuntu 22.04" in w and "1 packages" in w for w in res.warnings)
    assert db.queries == [("PyPI", "requests")]


def test_go_and_maven_lookup_names() -> None:
    go = Package("golang.org/x/net", "v0.7.0", PackageType.GO)
    mvn = Package("log4j-core", "2.14.1", PackageType.JAVA, namespace="org.apache.logging.log4j")
    t = os_target(None)
    assert lookup_for(go, t) == Lookup("Go", "golang.org/x/net", "0.7.0")
    assert lookup_for(mvn, t) == Lookup("Maven", "org.apache.logging.log4j:log4j-core", "2.14.1")


def test_release_missing_from_database_is_a_warning_not_a_clean_result(make_db: MakeDB) -> None:
    fixed = rng(("introduced", "0"), ("fixed", "3.0.9-1"))
    db = make_db([aff("DEBIAN-CVE-1", "Debian:12", "openssl", fixed)])
    old = inv(deb("libssl3", "3.0.2-1", "openssl", "3.0.2-1"), os=OSInfo("debian", "11", "bullseye"))
    result = match_inventory(old, db)
    assert result.findings == ()
    assert any("Debian:11" in w and "no records" in w for w in result.warnings)
    current = inv(deb("libssl3", "3.0.2-1", "openssl", "3.0.2-1"))
    result12 = match_inventory(current, db)
    assert ids(result12.findings) == ["DEBIAN-CVE-1"]
    assert not any("no records" in w for w in result12.warnings)
