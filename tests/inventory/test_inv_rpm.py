"""rpm databases built by the real tools: rpmbuild makes two packages, rpm installs them into a sqlite rpmdb,
and Berkeley DB's own ``db_load`` writes the same headers into a hash ``Packages`` file.

The ndb case has no writer on this machine (Debian's rpm only has the sqlite backend), so its container
is assembled here from the real header blobs, following rpm's ``rpmpkg.c`` layout.
"""

from __future__ import annotations

import shutil
import sqlite3
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from tests.inventory.invutil import run

from garrison.inventory.base import FileInput
from garrison.inventory.os import ndb
from garrison.inventory.os.rpm import RpmAnalyzer
from garrison.inventory.os.rpmheader import HeaderError, parse_header, split_source_rpm

SPEC = """Name: garrison-hello
Version: 1.2.3
Release: 4.el9
Epoch: 2
Summary: tiny test package
License: MIT
BuildArch: noarch
%description
tiny
%package libs
Summary: libs
License: BSD
%description libs
libs
%install
mkdir -p %{buildroot}/usr/share/garrison-hello
echo hi > %{buildroot}/usr/share/garrison-hello/hello.txt
%files
/usr/share/garrison-hello/hello.txt
%files libs
"""


@pytest.fixture(scope="module")
def rpmdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ``rpmdb.sqlite`` holding two packages built and installed by rpmbuild and rpm."""
    if shutil.which("rpmbuild") is None or shutil.which("rpm") is None:
        pytest.skip("rpm/rpmbuild not installed")
    top = tmp_path_factory.mktemp("rpmbuild")
    (top / "SPECS").mkdir()
    (top / "SPECS" / "hello.spec").write_text(SPEC)
    subprocess.run(
        ["rpmbuild", "--define", f"_topdir {top}", "-bb", str(top / "SPECS" / "hello.spec")],
        check=True,
        capture_output=True,
    )
    rpms = sorted(str(p) for p in (top / "RPMS").rglob("*.rpm"))
    root = top / "root"
    base = ["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm"]
    subprocess.run([*base, "--initdb"], check=True, capture_output=True)
    subprocess.run([*base, "-i", "--justdb", "--nodeps", "--nosignature", *rpms], check=True, capture_output=True)
    db = root / "var/lib/rpm/rpmdb.sqlite"
    assert db.exists()
    return db


def _blobs(db: Path) -> list[tuple[int, bytes]]:
    con = sqlite3.connect(db)
    try:
        return [(h, bytes(b)) for h, b in con.execute("SELECT hnum, blob FROM Packages")]
    finally:
        con.close()


def _check_packages(result: object) -> None:
    pkgs = {p.name: p for p in result.packages}  # type: ignore[attr-defined]
    assert set(pkgs) == {"garrison-hello", "garrison-hello-libs"}
    libs = pkgs["garrison-hello-libs"]
    assert (libs.version, libs.epoch, libs.arch, libs.licenses) == ("1.2.3-4.el9", 2, "noarch", ("BSD",))
    assert (libs.source_name, libs.source_version) == ("garrison-hello", "1.2.3-4.el9")
    assert libs.purl == "pkg:rpm/redhat/garrison-hello-libs@1.2.3-4.el9?arch=noarch&epoch=2"
    assert "usr/share/garrison-hello/hello.txt" in result.system_files  # type: ignore[attr-defined]
    assert result.warnings == ()  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"])
def test_sqlite_rpmdb(rpmdb: Path, path: str) -> None:
    _check_packages(run(RpmAnalyzer(), path, rpmdb.read_bytes()))


def test_sqlite_rpmdb_in_wal_mode(rpmdb: Path, tmp_path: Path) -> None:
    """rpm leaves the file in WAL mode (header bytes 18/19 == 2); it must still open from memory."""
    copy = tmp_path / "rpmdb.sqlite"
    shutil.copy(rpmdb, copy)
    con = sqlite3.connect(copy)
    con.execute("PRAGMA journal_mode=WAL")
    con.close()
    data = copy.read_bytes()
    assert data[18] == 2
    _check_packages(run(RpmAnalyzer(), "var/lib/rpm/rpmdb.sqlite", data))


@pytest.mark.parametrize("pagesize", [512, 4096])
def test_berkeley_db_packages(rpmdb: Path, tmp_path: Path, pagesize: int) -> None:
    """db_load (libdb 5.3) writes the real headers: 512-byte pages force overflow chains, 4096 keeps
    them on the hash page."""
    loader = shutil.which("db5.3_load") or shutil.which("db_load")
    if loader is None:
        pytest.skip("db5.3-util (db_load) not installed: apt-get install db5.3-util")
    dump = tmp_path / "dump.txt"
    lines = ["VERSION=3", "format=bytevalue", "type=hash", f"db_pagesize={pagesize}", "HEADER=END"]
    for hnum, blob in _blobs(rpmdb):
        lines += [" " + struct.pack("<I", hnum).hex(), " " + blob.hex()]
    lines.append("DATA=END")
    dump.write_text("\n".join(lines) + "\n")
    out = tmp_path / "Packages"
    subprocess.run([loader, "-f", str(dump), str(out)], check=True, capture_output=True)
    _check_packages(run(RpmAnalyzer(), "var/lib/rpm/Packages", out.read_bytes()))


def _ndb_file(blobs: list[bytes]) -> bytes:
    page = 4096
    slots = bytearray(page)
    slots[0:32] = b"RpmP" + struct.pack("<IIII", 0, 1, 1, len(blobs) + 1) + bytes(12)
    for off in range(32, page, 16):
        slots[off : off + 16] = b"Slot" + bytes(12)
    body = bytearray()
    for i, blob in enumerate(blobs, start=1):
        blkoff = (page + len(body)) // 16
        rec = b"BlbS" + struct.pack("<III", i, 1, len(blob)) + blob
        rec += struct.pack("<I", zlib.adler32(blob)) + struct.pack("<I", len(blob)) + b"BlbE"
        rec += bytes(-len(rec) % 16)
        slots[32 + (i - 1) * 16 : 48 + (i - 1) * 16] = b"Slot" + struct.pack("<III", i, blkoff, len(rec) // 16)
        body += rec
    return bytes(slots + body)


def test_ndb_packages(rpmdb: Path) -> None:
    data = _ndb_file([b for _, b in _blobs(rpmdb)])
    _check_packages(run(RpmAnalyzer(), "usr/lib/sysimage/rpm/Packages.db", data))
    with pytest.raises(ndb.NdbError):
        list(ndb.blobs(b"RpmP" + bytes(100)))


# A hash meta page, then one hash page whose two item offsets point outside the page.
_BAD_HASH_PAGE = (
    bytes(12)
    + struct.pack("<III", 0x061561, 9, 512)
    + bytes(512 - 24)
    + bytes(20)
    + struct.pack("<HHBB", 2, 0, 0, 13)
    + struct.pack("<HH", 9000, 9001)
    + bytes(512 - 30)
)


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("var/lib/rpm/rpmdb.sqlite", b"SQLite format 3\x00" + bytes(200)),
        ("var/lib/rpm/rpmdb.sqlite", b"not a database at all"),
        ("var/lib/rpm/Packages", bytes(8192)),
        ("var/lib/rpm/Packages", _BAD_HASH_PAGE),
        ("var/lib/rpm/Packages.db", b"RpmP" + b"\xff" * 60),
    ],
    ids=["sqlite-empty", "not-sqlite", "bdb-zeros", "bdb-bad-offsets", "ndb-garbage"],
)
def test_corrupt_databases_warn(path: str, content: bytes) -> None:
    result = run(RpmAnalyzer(), path, content)
    assert result.packages == ()
    assert result.warnings and "rpm" in result.warnings[0]


def test_bad_header_blob_is_skipped_with_warning(rpmdb: Path, tmp_path: Path) -> None:
    copy = tmp_path / "rpmdb.sqlite"
    shutil.copy(rpmdb, copy)
    con = sqlite3.connect(copy)
    con.execute("INSERT INTO Packages (hnum, blob) VALUES (99, ?)", (struct.pack(">ii", 5, 10**9),))
    con.commit()
    con.close()
    result = RpmAnalyzer().analyze(FileInput("var/lib/rpm/rpmdb.sqlite", copy.read_bytes()))
    assert len(result.packages) == 2 and len(result.warnings) == 1


def test_header_parser_bounds() -> None:
    with pytest.raises(HeaderError):
        parse_header(b"\x00\x00")
    # One NAME entry pointing past the data store.
    blob = struct.pack(">ii", 1, 4) + struct.pack(">iiii", 1000, 6, 50, 1) + b"abc\x00"
    with pytest.raises(HeaderError):
        parse_header(blob)
    ok = struct.pack(">ii", 1, 4) + struct.pack(">iiii", 1000, 6, 0, 1) + b"abc\x00"
    assert parse_header(ok).name == "abc"


@pytest.mark.parametrize(
    ("srpm", "expected"),
    [
        ("bash-5.1.8-6.el9.src.rpm", ("bash", "5.1.8-6.el9")),
        ("python3.11-3.11.5-1.el9_3.src.rpm", ("python3.11", "3.11.5-1.el9_3")),
        ("kernel-5.14.0-362.nosrc.rpm", ("kernel", "5.14.0-362")),
        ("(none)", ("", "")),
        ("weird.src.rpm", ("", "")),
    ],
)
def test_split_source_rpm(srpm: str, expected: tuple[str, str]) -> None:
    assert split_source_rpm(srpm) == expected


def test_rpm_wants() -> None:
    a = RpmAnalyzer()
    for p in ("var/lib/rpm/Packages", "var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/Packages.db"):
        assert a.wants(p, 1, 0o644)
    for p in ("var/lib/rpm/Packages.bak", "var/lib/rpm/Index.db", "opt/var/lib/rpm/Packages"):
        assert not a.wants(p, 1, 0o644)
