"""The analyzer registry (one list, unique names, cache fingerprint, cheap ``wants``) and purl spelling."""

from __future__ import annotations

import dataclasses
import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packageurl import PackageURL

from garrison.errors import UsageError
from garrison.inventory import purl
from garrison.inventory.base import FileInput
from garrison.inventory.cache import analyzers_key
from garrison.inventory.os.dpkg import DpkgAnalyzer
from garrison.inventory.registry import Declared, check_unique, declared_analyzers, default_analyzers
from garrison.model import OSInfo, Package, PackageType


def test_image_and_dir_modes() -> None:
    image = default_analyzers()
    names = [a.name for a in image]
    assert len(names) == len(set(names))
    assert {
        "os-release",
        "dpkg",
        "apk",
        "rpm",
        "python-dist",
        "npm-package",
        "java-archive",
        "go-binary",
        "rust-binary",
        "ruby-gemspec",
        "dotnet-deps",
        "php-composer",
    } == set(names)
    dir_names = {a.name for a in default_analyzers("dir")}
    assert dir_names > set(names)
    assert {
        "npm-package-lock",
        "yarn-lock",
        "go-mod",
        "cargo-lock",
        "python-requirements",
    } <= dir_names - set(names)
    with pytest.raises(UsageError):
        default_analyzers("bogus")


@pytest.mark.parametrize("mode", ["image", "dir"])
def test_declared_names_and_versions_are_the_analyzers_own(mode: str) -> None:
    """The registry lists image analyzers by name and version without importing them (the cache key
    of a warm scan needs nothing more); each entry must say what the analyzer itself says."""
    declared = declared_analyzers(mode)
    real = default_analyzers(mode)
    assert not any(isinstance(a, Declared) for a in real)
    assert [(a.name, a.version) for a in declared] == [(a.name, a.version) for a in real]
    for d in declared:
        if isinstance(d, Declared):
            a = d.load()
            assert (d.name, d.version, d.max_bytes) == (a.name, a.version, a.max_bytes), d.target
    assert analyzers_key(declared) == analyzers_key(real)


def test_declared_analyzer_delegates() -> None:
    dpkg = next(a for a in declared_analyzers() if a.name == "dpkg")
    assert isinstance(dpkg, Declared)
    assert dpkg.wants("var/lib/dpkg/status", 10, 0o644)
    assert not dpkg.wants("etc/passwd", 10, 0o644)
    assert dpkg.path_prefixes == ("var/lib/dpkg/",)  # dispatch hints too
    assert dpkg.analyze(FileInput("var/lib/dpkg/info/x.list", b"/usr/bin/x\n")).system_files == ("usr/bin/x",)
    with pytest.raises(AttributeError):
        dpkg.no_such_attribute


def test_duplicate_name_fails() -> None:
    with pytest.raises(ValueError, match="duplicate analyzer name 'dpkg'"):
        check_unique([DpkgAnalyzer(), DpkgAnalyzer()])


def test_fingerprint_tracks_names_and_versions() -> None:
    base = default_analyzers()
    fp = analyzers_key(base)
    assert fp == analyzers_key(tuple(reversed(base)))  # order does not matter
    bumped = tuple(
        dataclasses.replace(a, version=a.version + 1) if a.name == "dpkg" else a  # type: ignore[type-var]
        for a in base
    )
    assert analyzers_key(bumped) != fp
    assert analyzers_key(base[1:]) != fp
    assert analyzers_key(default_analyzers("dir")) != fp


ROUTES = [
    ("etc/os-release", 0o644, 100, {"os-release"}),
    ("var/lib/dpkg/status", 0o644, 100, {"dpkg"}),
    ("lib/apk/db/installed", 0o644, 100, {"apk"}),
    ("var/lib/rpm/rpmdb.sqlite", 0o644, 100, {"rpm"}),
    ("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", 0o644, 100, {"python-dist"}),
    ("app/node_modules/express/package.json", 0o644, 100, {"npm-package"}),
    ("app/app.jar", 0o644, 100, {"java-archive"}),
    ("usr/local/bin/app", 0o755, 5_000_000, {"go-binary", "rust-binary"}),
    ("usr/share/doc/README", 0o644, 100, set()),
    ("app/package-lock.json", 0o644, 100, set()),  # image mode: lock files are not read
]


@pytest.mark.parametrize(("path", "mode", "size", "expected"), ROUTES)
def test_routing(path: str, mode: int, size: int, expected: set[str]) -> None:
    assert {a.name for a in default_analyzers() if a.wants(path, size, mode)} == expected


def test_wants_is_cheap() -> None:
    """Every analyzer's ``wants`` over real paths: a few microseconds per file for the whole list
    (CPU time; generous bound for a shared, loaded machine)."""
    paths: list[tuple[str, int, int]] = []
    for root, _dirs, files in os.walk("/usr/lib"):
        for f in files:
            paths.append((os.path.join(root, f)[1:], 1000, 0o644))
        if len(paths) > 20_000:
            break
    analyzers = default_analyzers("dir")
    start = time.process_time()
    for p, size, mode in paths:
        for a in analyzers:
            a.wants(p, size, mode)
    per_file = (time.process_time() - start) / len(paths)
    assert per_file < 40e-6, f"{per_file * 1e6:.1f} µs per file"


# --------------------------------------------------------------------------- purl

_plainish = st.text(alphabet="abcXYZ019.+-~_:@/ %", min_size=1, max_size=12).filter(lambda s: s.strip() == s)


@settings(max_examples=300, deadline=None)
@given(name=_plainish, version=_plainish, arch=st.sampled_from(["", "amd64", "x86_64", "all"]))
def test_fast_path_agrees_with_packageurl(name: str, version: str, arch: str) -> None:
    for type_, ns in (
        ("deb", "debian"),
        ("apk", "alpine"),
        ("rpm", "redhat"),
        ("cargo", None),
        ("gem", None),
    ):
        fast = purl._build(type_, name, version, ns, {"arch": arch})  # never raises
        assert fast.startswith(f"pkg:{type_}/")
        try:
            reference = PackageURL(
                type=type_,
                namespace=ns,
                name=name,
                version=version,
                qualifiers={"arch": arch} if arch else None,
            ).to_string()
        except (ValueError, TypeError):
            continue  # packageurl rejects it; slow_build's fallback spelled it
        assert fast == reference


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (purl.deb("libc6", "2.36-9+deb12u4", "amd64"), "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"),
        (purl.deb("dpkg", "1:1.21.22", "amd64"), "pkg:deb/debian/dpkg@1:1.21.22?arch=amd64"),
        (purl.npm("@babel/core", "7.0.0"), "pkg:npm/%40babel/core@7.0.0"),
        (purl.pypi("Django_Rest.framework", "3.0"), "pkg:pypi/django-rest-framework@3.0"),
        (
            purl.golang("github.com/Masterminds/semver/v3", "v3.2.1"),
            "pkg:golang/github.com/Masterminds/semver/v3@v3.2.1",
        ),
        (
            purl.maven("org.apache.logging.log4j", "log4j-core", "2.14.1"),
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        ),
        (purl.composer("Symfony/Console", "v5.0.0"), "pkg:composer/symfony/console@v5.0.0"),
        (
            purl.rpm("bash", "5.1.8-6.el9", "x86_64", epoch=1),
            "pkg:rpm/redhat/bash@5.1.8-6.el9?arch=x86_64&epoch=1",
        ),
        (purl.nuget("Newtonsoft.Json", "13.0.1"), "pkg:nuget/Newtonsoft.Json@13.0.1"),
    ],
)
def test_purl_spellings(built: str, expected: str) -> None:
    assert built == expected


def test_with_os_rebuilds_os_purls() -> None:
    pkg = Package("bash", "5.1-6ubuntu1", PackageType.DEB, purl=purl.deb("bash", "5.1-6ubuntu1", "amd64"), arch="amd64")
    out = purl.with_os(pkg, OSInfo("ubuntu", "22.04", "jammy"))
    assert out.purl == "pkg:deb/ubuntu/bash@5.1-6ubuntu1?arch=amd64&distro=ubuntu-22.04"
    rpm = Package("openssl", "3.0.7-24.el9", PackageType.RPM, arch="x86_64", epoch=1)
    assert purl.with_os(rpm, OSInfo("rhel", "9.3")).purl == (
        "pkg:rpm/redhat/openssl@3.0.7-24.el9?arch=x86_64&distro=rhel-9.3&epoch=1"
    )
    py = Package("requests", "2.19.1", PackageType.PYTHON, purl="pkg:pypi/requests@2.19.1")
    assert purl.with_os(py, OSInfo("debian", "12")) is py
    assert purl.with_os(pkg, None) is pkg


# --------------------------------------------------------------------------- robustness

#: One path each analyzer wants, so random content reaches its parser.
_FUZZ_PATHS = {
    "os-release": "etc/os-release",
    "dpkg": "var/lib/dpkg/status",
    "apk": "lib/apk/db/installed",
    "rpm": "var/lib/rpm/Packages",
    "python-dist": "x/a.dist-info/METADATA",
    "npm-package": "node_modules/a/package.json",
    "java-archive": "a.jar",
    "ruby-gemspec": "specifications/a.gemspec",
    "dotnet-deps": "a.deps.json",
    "php-composer": "vendor/composer/installed.json",
    "go-binary": "usr/bin/a",
    "rust-binary": "usr/bin/a",
}


@settings(max_examples=60, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=6000),
        st.sampled_from([b"\x7fELF", b"PK\x03\x04", b"SQLite format 3\x00", b"RpmP", b"{", b"["]).flatmap(
            lambda head: st.binary(min_size=0, max_size=6000).map(lambda tail: head + tail)
        ),
    )
)
def test_no_analyzer_raises_on_arbitrary_bytes(data: bytes) -> None:
    from garrison.inventory.base import FileInput

    for a in default_analyzers("dir"):
        path = _FUZZ_PATHS.get(a.name, {"python-requirements": "requirements.txt"}.get(a.name, ""))
        if not path:
            path = next(iter(getattr(a, "basenames", ())), "x")
        for p in (path, "var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/Packages.db") if a.name == "rpm" else (path,):
            result = a.analyze(FileInput(p, data, 0o755, len(data)))
            assert isinstance(result.packages, tuple)
