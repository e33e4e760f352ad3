"""dpkg and apk databases: the host's real dpkg status checked against dpkg-query, plus format edge cases."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tests.inventory.invutil import names_versions, run

from garrison.inventory.base import FileInput
from garrison.inventory.os.apk import ApkAnalyzer
from garrison.inventory.os.dpkg import DpkgAnalyzer, parse_status
from garrison.model import PackageType

HOST_STATUS = Path("/var/lib/dpkg/status")


def _host_status() -> bytes:
    if not HOST_STATUS.exists() or shutil.which("dpkg-query") is None:
        pytest.skip("this machine has no dpkg database")
    return HOST_STATUS.read_bytes()


def test_host_status_matches_dpkg_query() -> None:
    """Every installed package dpkg itself reports, with the same source name and source version."""
    content = _host_status()
    out = subprocess.run(
        [
            "dpkg-query",
            "-W",
            "-f",
            "${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\n",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    expected = set()
    for line in out.splitlines():
        status, name, version, arch, src, src_version = line.split("\t")
        if status == "installed":
            expected.add((name, version, arch, src, src_version))
    result = run(DpkgAnalyzer(), "var/lib/dpkg/status", content)
    got = {(p.name, p.version, p.arch, p.source_name, p.source_version) for p in result.packages}
    assert got == expected
    assert result.warnings == ()
    assert all(p.type is PackageType.DEB and p.locations == ("var/lib/dpkg/status",) for p in result.packages)
    bash = next(p for p in result.packages if p.name == "bash")
    assert bash.purl.startswith(f"pkg:deb/debian/bash@{bash.version.replace('+', '%2B')}?arch=")


def test_status_parsing_is_fast() -> None:
    """Under 5 ms per 100 packages (the host file has long descriptions, so this is a worst case).

    CPU time of this process, best of five: the machine is shared, wall time measures the neighbours."""
    text = _host_status().decode()
    best = min(_timed(lambda: parse_status(text, "s")) for _ in range(5))
    count = len(parse_status(text, "s")[0])
    assert best / count * 100 < 0.005, f"{best * 1000:.1f} ms for {count} packages"


def _timed(fn: object) -> float:
    start = time.process_time()
    fn()  # type: ignore[operator]
    return time.process_time() - start


STATUS_EDGE = b"""Package: removed-pkg
Status: deinstall ok config-files
Priority: optional
Version: 1.0-1
Architecture: amd64

Package: libssl3
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 6157
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 3.0.11-1~deb12u2
Depends: libc6 (>= 2.34)
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL
 and TLS cryptographic protocols for secure communication over the
 Package: not-a-package
 Version: 0

Package: libgcc-s1
Status: install ok installed
Architecture: amd64
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14
\t
Package: half
Status: install ok half-configured
Version: 2
Architecture: all

Package: broken-no-version
Status: install ok installed
"""


def test_status_edge_cases() -> None:
    result = run(DpkgAnalyzer(), "var/lib/dpkg/status", STATUS_EDGE)
    by_name = {p.name: p for p in result.packages}
    assert set(by_name) == {"libssl3", "libgcc-s1"}
    assert (by_name["libssl3"].source_name, by_name["libssl3"].source_version) == (
        "openssl",
        "3.0.11-1~deb12u2",
    )
    assert (by_name["libgcc-s1"].source_name, by_name["libgcc-s1"].source_version) == ("gcc-12", "12.2.0-14")
    assert by_name["libssl3"].purl == "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64"
    assert len(result.warnings) == 1 and "broken" not in result.warnings[0]


# gcr.io/distroless/base-debian12: one file per package, no Status field.
DISTROLESS_LIBC = b"""Package: libc6
Version: 2.36-9+deb12u4
Architecture: amd64
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Installed-Size: 12987
Depends: libgcc-s1
Section: libs
Priority: optional
Multi-Arch: same
Homepage: https://www.gnu.org/software/libc/libc.html
Source: glibc
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
"""


def test_distroless_status_d_and_md5sums() -> None:
    a = DpkgAnalyzer()
    result = run(a, "var/lib/dpkg/status.d/libc6", DISTROLESS_LIBC)
    (pkg,) = result.packages
    assert (pkg.name, pkg.version, pkg.source_name, pkg.source_version) == (
        "libc6",
        "2.36-9+deb12u4",
        "glibc",
        "2.36-9+deb12u4",
    )
    assert pkg.purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"
    md5 = b"0f5d5ae1e2a3a1c6b3e4f6a7b8c9d0e1  lib/x86_64-linux-gnu/libc.so.6\n"
    assert run(a, "var/lib/dpkg/status.d/libc6.md5sums", md5).system_files == ("lib/x86_64-linux-gnu/libc.so.6",)


def test_info_list_gives_system_files() -> None:
    real = Path("/var/lib/dpkg/info/bash.list")
    content = real.read_bytes() if real.exists() else b"/.\n/bin\n/bin/bash\n/usr/share/doc/bash/README\n"
    files = run(DpkgAnalyzer(), "var/lib/dpkg/info/bash.list", content).system_files
    assert "bin/bash" in files or "usr/bin/bash" in files
    assert all(not f.startswith("/") for f in files) and "" not in files


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("var/lib/dpkg/status", True),
        ("var/lib/dpkg/status-old", False),
        ("var/lib/dpkg/status.d/base-files", True),
        ("var/lib/dpkg/status.d/sub/dir", False),
        ("var/lib/dpkg/info/bash.list", True),
        ("var/lib/dpkg/info/bash.md5sums", False),
        ("usr/var/lib/dpkg/status", False),
    ],
)
def test_dpkg_wants(path: str, wanted: bool) -> None:
    assert DpkgAnalyzer().wants(path, 100, 0o644) is wanted


def test_garbage_status_never_raises() -> None:
    result = DpkgAnalyzer().analyze(FileInput("var/lib/dpkg/status", b"\x00\xff\xfe\nPackage\n:\n\n\n::::"))
    assert result.packages == ()


# Real layout of an Alpine 3.19 lib/apk/db/installed (two packages, abridged file lists).
APK_INSTALLED = b"""C:Q1VXHNBKRiqmlGmp/o6rlx5uqzRfk=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407278
I:667648
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Ter\xc3\xa4s <timo.teras@iki.fi>
t:1705338151
c:b1b5d2c1e1b7d0bf5e3a1d3f2c2c0b3e6a4b8f0d
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1hJ1uWq7Tj3D6i+Z3TTzA6b1W2ys=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1ZGRmRv0gDNKVEfS5KG4LrMRjGbA=
P:libcrypto3
V:3.1.4-r5
A:x86_64
S:1711290
I:4448256
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1707910542
D:so:libc.musl-x86_64.so.1
F:usr/lib
R:libcrypto.so.3
Z:Q1ge91t7o5ZF6oVJ4wLZd1LmkaGXQ=

C:Q1brokenblock=
T:no name or version here
"""


def test_apk_installed() -> None:
    result = run(ApkAnalyzer(), "lib/apk/db/installed", APK_INSTALLED)
    assert names_versions(result) == {("musl", "1.2.4_git20230717-r4"), ("libcrypto3", "3.1.4-r5")}
    crypto = next(p for p in result.packages if p.name == "libcrypto3")
    assert (crypto.source_name, crypto.arch, crypto.licenses) == ("openssl", "x86_64", ("Apache-2.0",))
    assert crypto.purl == "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64"
    assert result.system_files == (
        "lib/ld-musl-x86_64.so.1",
        "lib/libc.musl-x86_64.so.1",
        "usr/lib/libcrypto.so.3",
    )
    assert len(result.warnings) == 1


def test_apk_wants() -> None:
    assert ApkAnalyzer().wants("lib/apk/db/installed", 1, 0o644)
    assert not ApkAnalyzer().wants("lib/apk/db/installed.bak", 1, 0o644)
