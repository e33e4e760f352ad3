"""OS detection from release files: one table of real-format files, plus the merge rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.inventory.invutil import run

from garrison.inventory.os.release import ReleaseAnalyzer, merge, parse_release_file
from garrison.model import OSInfo

DEBIAN_12 = b"""PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""
# gcr.io/distroless/static-debian12 /etc/os-release
DISTROLESS = b"""PRETTY_NAME="Distroless"
NAME="Debian GNU/Linux"
ID="debian"
VERSION_ID="12"
VERSION="Debian GNU/Linux 12 (bookworm)"
HOME_URL="https://github.com/GoogleContainerTools/distroless"
"""
UBUNTU = b"""PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=jammy
"""
ALPINE = b"""NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
PRETTY_NAME="Alpine Linux v3.19"
"""
DEBIAN_SID = b"""PRETTY_NAME="Debian GNU/Linux trixie/sid"
NAME="Debian GNU/Linux"
ID=debian
"""

CASES = [
    ("etc/os-release", DEBIAN_12, OSInfo("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)")),
    # No VERSION_CODENAME: derived from the version.
    (
        "usr/lib/os-release",
        DEBIAN_12.replace(b"VERSION_CODENAME=bookworm\n", b""),
        OSInfo("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)"),
    ),
    ("etc/os-release", DISTROLESS, OSInfo("debian", "12", "bookworm", "Distroless", distroless=True)),
    ("etc/os-release", UBUNTU, OSInfo("ubuntu", "22.04", "jammy", "Ubuntu 22.04.4 LTS")),
    ("etc/os-release", ALPINE, OSInfo("alpine", "3.19.1", "", "Alpine Linux v3.19")),
    ("etc/os-release", DEBIAN_SID, OSInfo("debian", "", "", "Debian GNU/Linux trixie/sid")),
    ("etc/alpine-release", b"3.19.1\n", OSInfo("alpine", "3.19.1")),
    ("etc/debian_version", b"12.5\n", OSInfo("debian", "12.5", "bookworm")),
    ("etc/debian_version", b"11.9\n", OSInfo("debian", "11.9", "bullseye")),
    ("etc/debian_version", b"trixie/sid\n", OSInfo("debian", "", "trixie")),
    (
        "etc/redhat-release",
        b"Red Hat Enterprise Linux release 8.9 (Ootpa)\n",
        OSInfo("rhel", "8.9", "Ootpa", "Red Hat Enterprise Linux release 8.9 (Ootpa)"),
    ),
    (
        "etc/centos-release",
        b"CentOS Linux release 7.9.2009 (Core)\n",
        OSInfo("centos", "7.9.2009", "Core", "CentOS Linux release 7.9.2009 (Core)"),
    ),
    (
        "etc/redhat-release",
        b"Rocky Linux release 9.3 (Blue Onyx)\n",
        OSInfo("rocky", "9.3", "Blue Onyx", "Rocky Linux release 9.3 (Blue Onyx)"),
    ),
    (
        "etc/lsb-release",
        b'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=20.04\nDISTRIB_CODENAME=focal\nDISTRIB_DESCRIPTION="Ubuntu 20.04.6 LTS"\n',
        OSInfo("ubuntu", "20.04", "focal", "Ubuntu 20.04.6 LTS"),
    ),
]


@pytest.mark.parametrize(("path", "content", "expected"), CASES)
def test_release_files(path: str, content: bytes, expected: OSInfo) -> None:
    assert run(ReleaseAnalyzer(), path, content).os == expected


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("etc/os-release", b""),
        ("etc/os-release", b"\xff\xfe garbage = = \n"),
        ("etc/redhat-release", b"Some Unknown Linux 1.0\n"),
        ("etc/alpine-release", b"   \n"),
        ("etc/debian_version", b""),
    ],
)
def test_garbage_gives_no_os_and_never_raises(path: str, content: bytes) -> None:
    assert run(ReleaseAnalyzer(), path, content).os is None


def test_host_os_release_is_detected() -> None:
    """The machine's own release file (Debian 12 here) parses to a family and a version."""
    p = Path("/etc/os-release")
    if not p.exists():
        pytest.skip("no /etc/os-release on this machine")
    info = parse_release_file("etc/os-release", p.read_bytes())
    assert info is not None and info.family and info.version_id


def test_merge_prefers_os_release_and_fills_gaps() -> None:
    found = {
        "etc/debian_version": OSInfo("debian", "12.5", "bookworm"),
        "etc/os-release": OSInfo("debian", "12", "", "Debian GNU/Linux 12 (bookworm)"),
    }
    assert merge(found) == OSInfo("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)")


def test_merge_ignores_other_families() -> None:
    """Ubuntu images keep a Debian ``debian_version``; it must not turn the image into Debian."""
    found = {
        "etc/debian_version": OSInfo("debian", "", "bookworm"),
        "etc/os-release": OSInfo("ubuntu", "22.04", "", "Ubuntu"),
    }
    assert merge(found) == OSInfo("ubuntu", "22.04", "", "Ubuntu")
    assert merge({}) is None
    assert merge({"etc/debian_version": OSInfo("debian", "12.5", "bookworm")}) == OSInfo("debian", "12.5", "bookworm")


def test_wants_only_release_files() -> None:
    a = ReleaseAnalyzer()
    assert a.wants("etc/os-release", 10, 0o644)
    assert not a.wants("etc/os-release.bak", 10, 0o644)
    assert not a.wants("usr/share/doc/os-release", 10, 0o644)
