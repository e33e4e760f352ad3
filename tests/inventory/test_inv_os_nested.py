"""OS package databases wherever they are: apk's newer location, and in ``dir:`` mode a folder that
holds several root filesystems. Plus corrupt dpkg entries, which are dropped with a warning.

The trees hold real database files: this machine's own dpkg status and file lists, a real Alpine
``installed`` layout, and an rpm database built by rpmbuild and rpm (``test_inv_rpm.rpmdb``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from tests.inventory.invutil import names_versions, run
from tests.inventory.test_inv_dpkg_apk import APK_INSTALLED
from tests.inventory.test_inv_rpm import rpmdb  # noqa: F401  (a fixture)

from garrison.api import inventory
from garrison.config import Settings
from garrison.inventory.os import apk, dpkg
from garrison.model import PackageType

HOST_STATUS = Path("/var/lib/dpkg/status")
HOST_INFO = Path("/var/lib/dpkg/info")

STATUS_PY = b"""Package: python3-six
Status: install ok installed
Priority: optional
Section: python
Installed-Size: 59
Maintainer: Debian Python Team <team+python@tracker.debian.org>
Architecture: all
Source: six
Version: 1.16.0-4
Depends: python3:any
Description: Python 2 and 3 compatibility library
 Six is a Python 2 and 3 compatibility library.
"""
SIX_LIST = b"/.\n/usr\n/usr/lib\n/usr/lib/python3\n/usr/lib/python3/dist-packages\n" + (
    b"/usr/lib/python3/dist-packages/six-1.16.0.egg-info\n/usr/lib/python3/dist-packages/six.py\n"
)
SIX_EGG_INFO = b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nSummary: Python 2 and 3 compatibility\n"


def test_apk_usr_lib_location() -> None:
    a = apk.ApkAnalyzer()
    result = run(a, "usr/lib/apk/db/installed", APK_INSTALLED)
    assert names_versions(result) == {("musl", "1.2.4_git20230717-r4"), ("libcrypto3", "3.1.4-r5")}
    assert "lib/ld-musl-x86_64.so.1" in result.system_files  # relative to the root, not to usr/
    assert not a.wants("usr/lib/apk/db/installed.new", 1, 0o644)
    assert not a.wants("srv/alpine/lib/apk/db/installed", 1, 0o644)  # below the root: dir: mode only


def test_apk_usr_lib_in_a_dir_scan(tmp_path: Path) -> None:
    (tmp_path / "usr/lib/apk/db").mkdir(parents=True)
    (tmp_path / "usr/lib/apk/db/installed").write_bytes(APK_INSTALLED)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n')
    inv = inventory(f"dir:{tmp_path}", Settings(cache_dir=tmp_path / ".cache"))
    assert {(p.name, p.type) for p in inv.packages} == {("musl", PackageType.APK), ("libcrypto3", PackageType.APK)}
    assert inv.os is not None and inv.os.family == "alpine"


def _debian_rootfs(root: Path) -> set[tuple[str, str]]:
    """A Debian root filesystem from this machine's real dpkg database, plus python3-six, whose
    egg-info dpkg owns (so it must not come back as a Python package)."""
    if not HOST_STATUS.exists():
        pytest.skip("this machine has no dpkg database")
    (root / "var/lib/dpkg/info").mkdir(parents=True)
    status = HOST_STATUS.read_bytes().rstrip(b"\n") + b"\n\n" + STATUS_PY
    (root / "var/lib/dpkg/status").write_bytes(status)
    for lst in sorted(HOST_INFO.glob("*.list"))[:20]:
        shutil.copy(lst, root / "var/lib/dpkg/info" / lst.name)
    (root / "var/lib/dpkg/info/python3-six.list").write_bytes(SIX_LIST)
    site = root / "usr/lib/python3/dist-packages"
    site.mkdir(parents=True)
    (site / "six-1.16.0.egg-info").write_bytes(SIX_EGG_INFO)
    packages, _ = dpkg.parse_status(status.decode(), "s")
    return {(p.name, p.version) for p in packages}


def test_dir_with_several_root_filesystems(tmp_path: Path, rpmdb: Path) -> None:  # noqa: F811
    tree = tmp_path / "machines"
    debian = _debian_rootfs(tree / "debian")
    (tree / "alpine/lib/apk/db").mkdir(parents=True)
    (tree / "alpine/lib/apk/db/installed").write_bytes(APK_INSTALLED)
    (tree / "nested/deeper/alpine-new/usr/lib/apk/db").mkdir(parents=True)
    (tree / "nested/deeper/alpine-new/usr/lib/apk/db/installed").write_bytes(APK_INSTALLED.replace(b"r5", b"r6"))
    (tree / "fedora/var/lib/rpm").mkdir(parents=True)
    shutil.copy(rpmdb, tree / "fedora/var/lib/rpm/rpmdb.sqlite")
    inv = inventory(f"dir:{tree}", Settings(cache_dir=tmp_path / ".cache"))
    by_type: dict[PackageType, set[tuple[str, str]]] = {}
    for p in inv.packages:
        by_type.setdefault(p.type, set()).add((p.name, p.version))
    assert by_type[PackageType.DEB] == debian
    assert by_type[PackageType.APK] == {
        ("musl", "1.2.4_git20230717-r4"),
        ("libcrypto3", "3.1.4-r5"),
        ("libcrypto3", "3.1.4-r6"),
    }
    assert {n for n, _ in by_type[PackageType.RPM]} == {"garrison-hello", "garrison-hello-libs"}
    # dpkg's file list for that root filesystem owns the egg-info: an OS package only.
    assert PackageType.PYTHON not in by_type, by_type.get(PackageType.PYTHON)
    six = next(p for p in inv.packages if p.name == "python3-six")
    assert six.locations == ("debian/var/lib/dpkg/status",)
    # An image is one root filesystem: databases below its root are not the image's.
    assert not dpkg.DpkgAnalyzer().wants("debian/var/lib/dpkg/status", 1, 0o644)
    assert dpkg.NESTED.wants("debian/var/lib/dpkg/status", 1, 0o644)
    assert not dpkg.NESTED.wants("debian/var/lib/dpkg/status-old", 1, 0o644)


def test_python_below_a_nested_root_not_owned_by_dpkg_is_reported(tmp_path: Path) -> None:
    """The file lists are rooted at their own root filesystem: a pip-installed package elsewhere stays."""
    tree = tmp_path / "t"
    _debian_rootfs(tree / "debian")
    other = tree / "app/usr/lib/python3/dist-packages"
    other.mkdir(parents=True)
    (other / "six-1.16.0.egg-info").write_bytes(SIX_EGG_INFO)
    inv = inventory(f"dir:{tree}", Settings(cache_dir=tmp_path / ".cache"))
    py = [p for p in inv.packages if p.type is PackageType.PYTHON]
    assert [(p.name, p.locations) for p in py] == [("six", ("app/usr/lib/python3/dist-packages/six-1.16.0.egg-info",))]


CORRUPT = b"""Package: good
Status: install ok installed
Version: 2:1.2.3-4+deb12u1
Architecture: amd64

Package: no-digit
Status: install ok installed
Version: abc-1
Architecture: amd64

Package: bad-epoch
Status: install ok installed
Version: x:1.0-1
Architecture: amd64

Package: empty-revision
Status: install ok installed
Version: 1.0-
Architecture: amd64

Package: bad-char
Status: install ok installed
Version: 1.0_beta-1
Architecture: amd64

Package: tilde-ok
Status: install ok installed
Version: 1.0~rc1-1~bpo12+1
Architecture: all
"""


def test_corrupt_dpkg_versions_are_dropped_with_a_warning() -> None:
    result = run(dpkg.DpkgAnalyzer(), "var/lib/dpkg/status", CORRUPT)
    assert names_versions(result) == {("good", "2:1.2.3-4+deb12u1"), ("tilde-ok", "1.0~rc1-1~bpo12+1")}
    assert len(result.warnings) == 4
    for name in ("no-digit", "bad-epoch", "empty-revision", "bad-char"):
        assert any(name in w and "invalid version" in w for w in result.warnings), (name, result.warnings)


def test_every_host_version_is_valid() -> None:
    """What real dpkg wrote, dpkg's rules accept: nothing of this machine's database is dropped."""
    if not HOST_STATUS.exists():
        pytest.skip("this machine has no dpkg database")
    packages, warnings = dpkg.parse_status(HOST_STATUS.read_text("utf-8", "replace"), "s")
    assert warnings == [] and len(packages) > 50


VERSIONS = [
    "2:1.2.3-4+deb12u1",
    "1.0~rc1-1~bpo12+1",
    "1:2:3-1",
    "1.0-1-2",
    "3.0.11-1~deb12u2",
    "0",
    "abc-1",
    "x:1.0-1",
    ":1.0",
    "1.0-",
    "1.0_beta-1",
    "0:a1",
    "1.0-a_b",
    "1.0 1",
    "-1",
]


def test_version_check_agrees_with_dpkg() -> None:
    """``dpkg --validate-version`` is the oracle: its errors and its syntax warnings both drop."""
    if shutil.which("dpkg") is None:
        pytest.skip("dpkg not installed")
    for v in VERSIONS:
        proc = subprocess.run(["dpkg", "--validate-version", v], capture_output=True, text=True)
        assert dpkg.valid_version(v) == (proc.returncode == 0 and not proc.stderr), (v, proc.stderr)
