"""Table tests per version scheme, plus property tests against the real tools (dpkg, rpm,
packaging) where the machine has them."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import InvalidVersion as InvalidPackagingVersion
from packaging.version import Version

from garrison.vulndb.versions import SCHEMES, InvalidVersion, scheme_for

TABLES: dict[str, list[tuple[str, str, int]]] = {
    "dpkg": [
        ("1.0", "1.0", 0),
        ("1.0~rc1", "1.0", -1),
        # A version that is just "0" encodes like dpkg's end-of-string marker; a tilde after it still
        # sorts lower (found by comparing against dpkg; the key once got these backwards).
        ("0~1", "0", -1),
        ("0~1-1", "0-1", -1),
        ("00~rc1", "0", -1),
        ("1:0~1", "1:0", -1),
        ("1.0", "1.0-0", 0),
        ("1:1.0", "2.0", 1),
        ("1.0-1", "1.0-2", -1),
        ("1.0a", "1.0", 1),
        ("1.0", "1.0+b1", -1),
        ("1.0~~", "1.0~", -1),
        ("1.0~~a", "1.0~~", 1),
        ("1.0.1", "1.0a", 1),
        ("2.30-5", "2.30-10", -1),
        ("7:4.3-2", "7:4.3.6-0+deb12u1", -1),
        ("3.0.11-1~deb12u2", "3.0.11-1", -1),
        ("1.2.3-1", "1.2.3-1.1", -1),
        ("0.9", "0.10", -1),
        ("1.0-1ubuntu1", "1.0-1", 1),
        ("1.0+dfsg-1", "1.0-1", 1),
        ("2:1.0", "1:9.9", 1),
        ("1.01", "1.1", 0),
        ("1.2-3-4", "1.2-3-5", -1),
        ("0", "0.0.1", -1),
    ],
    "rpm": [
        ("1.0", "1.0", 0),
        ("1.0", "1.0.1", -1),
        ("1.0a", "1.0", 1),
        ("1.0~rc1", "1.0", -1),
        ("1.0^git1", "1.0", 1),
        ("1.0^git1", "1.0.1", -1),
        ("1.0~rc1^git1", "1.0~rc1", 1),
        ("1.a", "1.1", -1),
        ("1.010", "1.10", 0),
        ("2.0", "10.0", -1),
        ("1:1.0-1", "2.0-1", 1),
        ("1.0-1.el8", "1.0-1.el9", -1),
        ("1.0-2", "1.0-10", -1),
        ("abc", "abd", -1),
        ("1.0.0", "1.0", 1),
        ("1.0", "1_0", 0),
        ("1.0-1", "1.0-1~bootstrap", 1),
        ("FC5", "fc4", -1),
    ],
    "apk": [
        ("1.2.3-r0", "1.2.3-r1", -1),
        ("1.2.3_rc1-r0", "1.2.3-r0", -1),
        ("1.2.3_p1-r0", "1.2.3-r0", 1),
        ("1.2.3_alpha", "1.2.3_beta", -1),
        ("1.2.3_beta2", "1.2.3_beta10", -1),
        ("1.2.3a", "1.2.3", 1),
        ("1.2.3a", "1.2.4", -1),
        ("1.2.3", "1.2.3.1", -1),
        ("1.2a", "1.2.1", -1),
        ("1.2_p1", "1.2-r1", 1),
        ("3.0.11-r0", "3.0.11-r0", 0),
        ("1.10", "1.9", 1),
        ("2.0_git20200101", "2.0", 1),
        ("2.0_pre1", "2.0_rc1", -1),
        ("0", "1.0", -1),
        ("1.0_rc1_p1", "1.0_rc1", 1),
        ("1.0-r10", "1.0-r9", 1),
        ("0.1.0_alpha_pre2", "0.1.0_alpha", -1),
        ("2.5.1-r8", "2.5.1a-r1", -1),
        ("0.9.28.1", "087-r1", -1),
        ("1.6d", "1.2.07.8", 1),
        ("1.0.0_pre20191002222144-r0", "1.0.0_pre20210530193627-r0", -1),
        ("6.6.4p1-r1", "6.6.4p2-r0", -1),
        ("6.6.4p1-r1", "6.6.4-r9", 1),
    ],
    "pep440": [
        ("1.0", "1.0.0", 0),
        ("1.0a1", "1.0", -1),
        ("1.0.dev1", "1.0a1", -1),
        ("1.0rc1", "1.0", -1),
        ("1.0.post1", "1.0", 1),
        ("1.0+local", "1.0", 1),
        ("1!0.1", "2.0", 1),
        ("2.2.10", "2.2.9", 1),
        ("1.0-rc-1", "1.0rc1", 0),
        ("v1.0", "1.0", 0),
        ("1.0.0a1", "1.0.0b1", -1),
        ("1.0c1", "1.0rc1", 0),
        ("0", "0.0.1", -1),
        ("2019.1", "2018.12", 1),
        ("1.0.dev0", "1.0a0.dev0", -1),
    ],
    "semver": [
        ("1.0.0-alpha", "1.0.0-alpha.1", -1),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta", -1),
        ("1.0.0-alpha.beta", "1.0.0-beta", -1),
        ("1.0.0-beta", "1.0.0-beta.2", -1),
        ("1.0.0-beta.2", "1.0.0-beta.11", -1),
        ("1.0.0-beta.11", "1.0.0-rc.1", -1),
        ("1.0.0-rc.1", "1.0.0", -1),
        ("1.0.0+build.5", "1.0.0", 0),
        ("v1.2.3", "1.2.3", 0),
        ("=1.2.3", "1.2.3", 0),
        ("0", "0.0.0", 0),
        ("0.0.0-0", "0.0.0", -1),
        ("1.10.0", "1.9.0", 1),
        ("2.0.0", "10.0.0", -1),
        ("1.2.3-1", "1.2.3-a", -1),
        ("4.17.15", "4.17.21", -1),
    ],
    "go": [
        ("v1.2.3", "v1.2.4", -1),
        ("v0.0.0-20200101120000-abcdef123456", "v0.0.1", -1),
        ("v0.0.0-20200101120000-abcdef123456", "v0.0.0-20210101120000-abcdef123456", -1),
        ("v2.0.0+incompatible", "v2.0.0", 0),
        ("v1.2.3", "1.2.3", 0),
        ("v1.2.4-0.20200101120000-abcdef123456", "v1.2.3", 1),
        ("v1.2.4-0.20200101120000-abcdef123456", "v1.2.4", -1),
        ("0", "v0.0.1", -1),
        ("v1.10.0", "v1.9.9", 1),
        ("v1.0.0-rc.1", "v1.0.0", -1),
        ("v1.0.0-rc.1", "v1.0.0-rc.2", -1),
        ("v3.2.1+incompatible", "v3.10.0+incompatible", -1),
        ("1.21.0", "1.21.0-rc.1", 1),
        ("v0.1.0", "v0.0.0-20991231235959-ffffffffffff", 1),
        ("v1.0.0-beta", "v1.0.0-alpha", 1),
    ],
    "maven": [
        ("1", "1.0", 0),
        ("1.0", "1.0.0", 0),
        ("1.0-alpha1", "1.0-beta1", -1),
        ("1.0-beta1", "1.0-milestone1", -1),
        ("1.0-m1", "1.0-rc1", -1),
        ("1.0-rc1", "1.0-cr1", 0),
        ("1.0-rc1", "1.0-SNAPSHOT", -1),
        ("1.0-SNAPSHOT", "1.0", -1),
        ("1.0", "1.0-ga", 0),
        ("1.0", "1.0-final", 0),
        ("1.0-release", "1.0", 0),
        ("1.0", "1.0-sp1", -1),
        ("1.0-sp1", "1.0.1", -1),
        ("1.0-a1", "1.0-alpha-1", 0),
        ("1.0-foo", "1.0-sp", 1),
        ("1.0-foo", "1.0.1", -1),
        ("2.0", "10.0", -1),
        ("1.0.0.RELEASE", "1.0.0", 0),
        ("31.1-jre", "31.1-android", 1),
        ("1.0-alpha-2", "1.0-alpha-10", -1),
        ("2.17.1", "2.15.0", 1),
    ],
    "rubygems": [
        ("1.0", "1.0.0", 0),
        ("1.0.a", "1.0", -1),
        ("1.0.a", "1.0.b", -1),
        ("1.0.rc1", "1.0", -1),
        ("1.0.0.pre", "1.0.0", -1),
        ("1.0-1", "1.0", -1),
        ("1.9", "1.10", -1),
        ("1.0.a10", "1.0.a9", 1),
        ("2.0.0.rc2", "2.0.0.rc10", -1),
        ("1.0.0.beta", "1.0.0.alpha", 1),
        ("0", "0.0.1", -1),
        ("1.2.3.4", "1.2.3", 1),
        ("5.0.0.beta1", "5.0.0", -1),
        ("1.a", "1.0.a", 0),
        ("4.2.11.1", "4.2.11", 1),
    ],
    "nuget": [
        ("1.0", "1.0.0.0", 0),
        ("1.0.0-beta", "1.0.0-Beta", 0),
        ("1.0.0-alpha", "1.0.0", -1),
        ("1.0.0.1", "1.0.0", 1),
        ("1.0.0+meta", "1.0.0", 0),
        ("1.0.0-alpha.2", "1.0.0-alpha.10", -1),
        ("1.0.0-alpha10", "1.0.0-alpha2", -1),
        ("2.0", "10.0", -1),
        ("1.0.0-rc.1", "1.0.0-beta.9", 1),
        ("1.0.0-1", "1.0.0-a", -1),
        ("4.5.6.7", "4.5.6.8", -1),
        ("1.2.3", "1.2.3.0", 0),
        ("1", "1.0", 0),
        ("v1.0", "1.0", 0),
        ("1.0.0-beta.1", "1.0.0-beta", 1),
    ],
    "composer": [
        ("1.0.0", "1.0", 0),
        ("v1.0.0", "1.0.0", 0),
        ("1.0.0-dev", "1.0.0-alpha1", -1),
        ("1.0.0-alpha1", "1.0.0-beta1", -1),
        ("1.0.0-beta2", "1.0.0-RC1", -1),
        ("1.0.0-RC1", "1.0.0", -1),
        ("1.0.0", "1.0.0-p1", -1),
        ("1.0.0-patch1", "1.0.0-pl1", 0),
        ("1.0.0-beta.2", "1.0.0-beta10", -1),
        ("1.0.0a1", "1.0.0-alpha1", 0),
        ("1.2.x-dev", "1.2.5", 1),
        ("1.0.0.1", "1.0.0", 1),
        ("8.0", "8.1.0", -1),
        ("2.0.0-b1", "2.0.0-beta1", 0),
        ("10.0.0", "9.9.9", 1),
        ("1.0.0-beta1-dev", "1.0.0-beta1", -1),
    ],
    "generic": [
        ("1.0", "1.0", 0),
        ("1.0", "1.1", -1),
        ("1.10", "1.9", 1),
        ("1.0a", "1.0", 1),
        ("r100", "r99", 1),
    ],
}

INVALID: dict[str, list[str]] = {
    "dpkg": ["", "a:1.0", "1.0 beta", ":1.0", "-1"],
    "rpm": ["", "x:1.0"],
    "apk": ["1.0_foo", "abc", "1.0-rX", ""],
    "pep440": ["1.0-foo-bar", "latest", ""],
    "semver": ["1.2.3.4", "a.b.c", "1.2.3-", ""],
    "go": ["vX", "latest"],
    "maven": ["", "1.0 beta"],
    "rubygems": ["1..2", "a.1", "1.0 beta"],
    "nuget": ["1.0.0.0.0", "abc", "1.0-"],
    "composer": ["dev-master", "1.0.0.0.0", "abc"],
}

ROWS = [(name, a, b, want) for name, rows in TABLES.items() for a, b, want in rows]


@pytest.mark.parametrize(("scheme", "a", "b", "want"), ROWS)
def test_table(scheme: str, a: str, b: str, want: int) -> None:
    s = SCHEMES[scheme]
    assert s.compare(a, b) == want
    assert s.compare(b, a) == -want
    ka, kb = s.key(a), s.key(b)
    assert ((ka > kb) - (ka < kb)) == want


@pytest.mark.parametrize(("scheme", "version"), [(n, v) for n, vs in INVALID.items() for v in vs])
def test_invalid(scheme: str, version: str) -> None:
    with pytest.raises(InvalidVersion):
        SCHEMES[scheme].key(version)


def test_tables_are_big_enough() -> None:
    for name, rows in TABLES.items():
        if name != "generic":
            assert len(rows) >= 15, name


@pytest.mark.parametrize(
    ("ecosystem", "scheme"),
    [
        ("Debian:12", "dpkg"),
        ("Ubuntu:22.04:LTS", "dpkg"),
        ("Alpine:v3.19", "apk"),
        ("Red Hat:enterprise_linux:9", "rpm"),
        ("PyPI", "pep440"),
        ("npm", "semver"),
        ("crates.io", "semver"),
        ("Go", "go"),
        ("Maven", "maven"),
        ("RubyGems", "rubygems"),
        ("NuGet", "nuget"),
        ("Packagist", "composer"),
        ("SomethingNew", "generic"),
    ],
)
def test_scheme_for(ecosystem: str, scheme: str) -> None:
    assert scheme_for(ecosystem).name == scheme


def test_sorting_with_keys() -> None:
    versions = ["1.0-1", "1.0~rc1-1", "1:0.5-1", "1.0+b1-1", "1.0-1~deb12u1"]
    assert sorted(versions, key=SCHEMES["dpkg"].key) == [
        "1.0~rc1-1",
        "1.0-1~deb12u1",
        "1.0-1",
        "1.0+b1-1",
        "1:0.5-1",
    ]
    mvn = ["1.0", "1.0-SNAPSHOT", "1.0-alpha1", "1.0-sp1", "1.0-rc1"]
    assert sorted(mvn, key=SCHEMES["maven"].key) == [
        "1.0-alpha1",
        "1.0-rc1",
        "1.0-SNAPSHOT",
        "1.0",
        "1.0-sp1",
    ]


#: Maven's own canonical orderings (ComparableVersionTest, Maven 3.9 semantics), strictly ascending.
MAVEN_ORDERS = [
    "1-alpha2snapshot 1-alpha2 1-alpha-123 1-beta-2 1-beta123 1-m2 1-m11 1-rc 1-cr2 1-rc123 1-SNAPSHOT 1 1-sp "
    "1-sp2 1-sp123 1-abc 1-def 1-pom-1 1-1-snapshot 1-1 1-2 1-123",
    "2.0 2.0.a 2-1 2.0.2 2.0.123 2.1.0 2.1-a 2.1b 2.1-c 2.1-1 2.1.0.1 2.2 2.123 11.a2 11.a11 11.b2 11.b11 11.m2 "
    "11.m11 11 11.a 11b 11c 11m",
]
MAVEN_EQUAL = (
    "1=1.0 1=1-0 1=1.0-0 1a=1-a 1a=1.0-a 1a=1.0.0-a 1.0a=1-a 1x=1-x 1ga=1 1release=1 1final=1 1cr=1rc "
    "1a1=1-alpha-1 1b2=1-beta-2 1m3=1-milestone-3 1X=1x 1.0.RC1=1.0-RC1 1.2.3.RELEASE=1.2.3"
)


@pytest.mark.parametrize("order", MAVEN_ORDERS)
def test_maven_canonical_orders(order: str) -> None:
    seq = order.split()
    scheme = SCHEMES["maven"]
    for i, a in enumerate(seq):
        for b in seq[i + 1 :]:
            assert scheme.compare(a, b) == -1, (a, b)
    assert sorted(reversed(seq), key=scheme.key) == seq


@pytest.mark.parametrize("pair", MAVEN_EQUAL.split())
def test_maven_equalities(pair: str) -> None:
    a, b = pair.split("=")
    assert SCHEMES["maven"].compare(a, b) == 0


# -- property tests against the real implementations ---------------------------------------------

_dpkg_part = st.text(alphabet="0123456789.+~abz", min_size=1, max_size=8)
_dpkg_version = st.builds(
    lambda epoch, up, rev: (f"{epoch}:" if epoch is not None else "") + up + (f"-{rev}" if rev else ""),
    st.one_of(st.none(), st.integers(0, 3)),
    st.from_regex(r"\A[0-9][0-9a-z.+~]{0,7}\Z"),
    st.one_of(st.just(""), _dpkg_part),
)


def _dpkg_oracle(pairs: list[tuple[str, str]]) -> list[int]:
    """One shell per batch; each pair costs one dpkg exec, not one Python subprocess."""
    script = "\n".join(
        f"if dpkg --compare-versions '{a}' lt '{b}'; then echo -1; "
        f"elif dpkg --compare-versions '{a}' eq '{b}'; then echo 0; else echo 1; fi"
        for a, b in pairs
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.slow  # runs the real tool on hundreds of generated versions
@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg not installed")
@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(_dpkg_version, _dpkg_version), min_size=20, max_size=20))
def test_dpkg_matches_dpkg(pairs: list[tuple[str, str]]) -> None:
    scheme = SCHEMES["dpkg"]
    assert [scheme.compare(a, b) for a, b in pairs] == _dpkg_oracle(pairs)


def _rpm_oracle(pairs: list[tuple[str, str]]) -> list[int]:
    lua = " ".join(f'print(rpm.vercmp("{a}", "{b}") .. " ")' for a, b in pairs)
    out = subprocess.run(["rpm", "--eval", f"%{{lua: {lua}}}"], capture_output=True, text=True, check=True).stdout
    return [int(x) for x in out.split()]


_rpm_version = st.from_regex(r"\A[0-9a-zA-Z][0-9a-zA-Z.~^_+]{0,8}\Z")


@pytest.mark.slow  # runs the real tool on hundreds of generated versions
@pytest.mark.skipif(shutil.which("rpm") is None, reason="rpm not installed")
@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(_rpm_version, _rpm_version), min_size=30, max_size=30))
def test_rpm_matches_rpmvercmp(pairs: list[tuple[str, str]]) -> None:
    scheme = SCHEMES["rpm"]
    assert [scheme.compare(a, b) for a, b in pairs] == _rpm_oracle(pairs)


# Every spelling PEP 440 allows (and some it does not), so that garrison's own parser and ordering are checked
# against packaging.version, the implementation pip uses: an independent oracle.
_sep = st.sampled_from(["", ".", "-", "_"])
_pep440_version = st.builds(
    lambda v, epoch, rel, pre, post, dev, local: v + epoch + rel + pre + post + dev + local,
    st.sampled_from(["", "v", "V"]),
    st.sampled_from(["", "", "1!", "0!", "2!"]),
    st.lists(st.integers(0, 20), min_size=1, max_size=4).map(lambda xs: ".".join(map(str, xs))),
    st.one_of(
        st.just(""),
        st.builds(
            lambda s1, label, s2, n: s1 + label + s2 + n,
            _sep,
            st.sampled_from(["a", "b", "rc", "c", "alpha", "beta", "pre", "preview", "RC", "Alpha"]),
            _sep,
            st.sampled_from(["", "0", "1", "2", "10"]),
        ),
    ),
    st.one_of(
        st.just(""),
        st.sampled_from(["-1", "-0"]),
        st.builds(
            lambda s1, label, s2, n: s1 + label + s2 + n,
            _sep,
            st.sampled_from(["post", "rev", "r", "POST"]),
            _sep,
            st.sampled_from(["", "0", "1", "3"]),
        ),
    ),
    st.one_of(
        st.just(""),
        st.builds(lambda s1, s2, n: s1 + "dev" + s2 + n, _sep, _sep, st.sampled_from(["", "0", "3", "12"])),
    ),
    st.one_of(
        st.just(""),
        st.lists(st.sampled_from(["ubuntu", "1", "2", "10", "a", "B", "deb12"]), min_size=1, max_size=3).map(
            lambda segs: "+" + ".".join(segs)
        ),
    ),
)


def _packaging_sign(a: str, b: str) -> int | None:
    """packaging.version's comparison, None when it rejects either version."""
    try:
        va, vb = Version(a), Version(b)
    except InvalidPackagingVersion:
        return None
    return (va > vb) - (va < vb)


@settings(max_examples=400, deadline=None)
@given(_pep440_version, _pep440_version)
def test_pep440_matches_packaging(a: str, b: str) -> None:
    want = _packaging_sign(a, b)
    scheme = SCHEMES["pep440"]
    if want is None:
        with pytest.raises(InvalidVersion):
            scheme.compare(a, b)
    else:
        assert scheme.compare(a, b) == want, (a, b)


@pytest.mark.parametrize("junk", ["1.0-foo-bar", "latest", "1.0+", "1.0+local!", "1..0", "1.0.", "!1.0", "1.0a1a2"])
def test_pep440_rejects_what_packaging_rejects(junk: str) -> None:
    with pytest.raises(InvalidPackagingVersion):
        Version(junk)
    with pytest.raises(InvalidVersion):
        SCHEMES["pep440"].key(junk)


@settings(max_examples=200, deadline=None)
@given(st.lists(_dpkg_version, min_size=3, max_size=3))
def test_dpkg_key_is_transitive(vs: list[str]) -> None:
    scheme = SCHEMES["dpkg"]
    a, b, c = sorted(vs, key=scheme.key)
    assert scheme.compare(a, b) <= 0 and scheme.compare(b, c) <= 0 and scheme.compare(a, c) <= 0


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg not installed")
def test_dpkg_table_agrees_with_dpkg() -> None:
    """The expectations in the table are themselves checked against dpkg."""
    rows = TABLES["dpkg"]
    assert _dpkg_oracle([(a, b) for a, b, _ in rows]) == [want for _, _, want in rows]


@pytest.mark.skipif(shutil.which("rpm") is None, reason="rpm not installed")
def test_rpm_table_agrees_with_rpm() -> None:
    rows = [(a, b, want) for a, b, want in TABLES["rpm"] if "-" not in a + b and ":" not in a + b]
    assert _rpm_oracle([(a, b) for a, b, _ in rows]) == [want for _, _, want in rows]


_semver_core = st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(0, 12)).map(
    lambda t: ".".join(map(str, t))
)
_semver_pre = st.lists(
    st.one_of(st.integers(0, 20).map(str), st.sampled_from(["alpha", "beta", "rc", "a1", "x-y"])),
    min_size=1,
    max_size=3,
).map(".".join)
_semver = st.builds(
    lambda core, pre, build: core + (f"-{pre}" if pre else "") + (f"+{build}" if build else ""),
    _semver_core,
    st.one_of(st.none(), _semver_pre),
    st.one_of(st.none(), st.sampled_from(["build.1", "sha.abc"])),
)


@settings(max_examples=300, deadline=None)
@given(_semver, _semver)
def test_semver_matches_node_semver(a: str, b: str) -> None:
    nodesemver = pytest.importorskip("nodesemver")
    assert SCHEMES["semver"].compare(a, b) == nodesemver.compare(a, b, False)
