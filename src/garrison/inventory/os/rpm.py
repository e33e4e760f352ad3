"""RPM packages from the rpm database, in all three on-disk formats, without librpm.

* ``rpmdb.sqlite`` (RHEL 9, Fedora ≥ 33): table ``Packages(hnum, blob)``; opened from memory with
  :meth:`sqlite3.Connection.deserialize`, never written to disk.
* ``Packages`` (Berkeley DB hash; CentOS 7, RHEL 8, Amazon Linux 2): see :mod:`.bdb`.
* ``Packages.db`` (ndb; SUSE): see :mod:`.ndb`.

Each yields header blobs decoded by :mod:`.rpmheader`. The ``gpg-pubkey`` pseudo packages (imported
signing keys) are skipped. Installed files become ``system_files``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from garrison.inventory import purl
from garrison.inventory.base import EMPTY, AnalysisResult, FileInput, MiB
from garrison.inventory.os import bdb, ndb
from garrison.inventory.os.rpmheader import HeaderError, RpmHeader, parse_header, split_source_rpm
from garrison.model import Package, PackageType

_DIRS = ("var/lib/rpm/", "usr/lib/sysimage/rpm/")
_FILES = frozenset(("rpmdb.sqlite", "Packages", "Packages.db"))
WANTED_PATHS = frozenset(d + f for d in _DIRS for f in _FILES)
#: ``dir:`` mode: the same databases below the scanned root (a folder of root filesystems).
_NESTED_TAILS = tuple(sorted("/" + p for p in WANTED_PATHS))


def sqlite_blobs(content: bytes) -> Iterator[bytes]:
    """Header blobs of an rpmdb.sqlite image held in memory.

    A database left in WAL mode (header bytes 18/19 == 2) is flipped to rollback mode in our copy:
    SQLite cannot open a WAL database from memory, and rpm checkpoints the WAL when it closes.
    """
    if len(content) < 100 or not content.startswith(b"SQLite format 3\x00"):
        raise ValueError("not a SQLite database")  # deserialize() fails with MemoryError on these
    data = bytearray(content)
    if len(data) >= 20 and data[18] == 2 and data[19] == 2:
        data[18] = data[19] = 1
    import sqlite3  # lazy: only images with an rpm database pay for it

    con = sqlite3.connect(":memory:")
    try:
        con.deserialize(bytes(data))
        for (blob,) in con.execute("SELECT blob FROM Packages"):
            if isinstance(blob, bytes):
                yield blob
    finally:
        con.close()


def to_package(h: RpmHeader, location: str) -> Package:
    version = f"{h.version}-{h.release}" if h.release else h.version
    src_name, src_version = split_source_rpm(h.source_rpm)
    return Package(
        name=h.name,
        version=version,
        type=PackageType.RPM,
        purl=purl.rpm(h.name, version, h.arch, h.epoch),
        locations=(location,),
        source_name=src_name or h.name,
        source_version=src_version or version,
        arch=h.arch,
        licenses=(h.license,) if h.license else (),
        epoch=h.epoch,
    )


def _blobs(path: str, content: bytes) -> Iterator[bytes]:
    if path.endswith("rpmdb.sqlite"):
        return sqlite_blobs(content)
    if path.endswith("Packages.db"):
        return ndb.blobs(content)
    return bdb.hash_values(content)


def parse_rpmdb(path: str, content: bytes) -> tuple[list[Package], list[str], list[str]]:
    """Packages, installed files and warnings of one rpm database file."""
    packages: list[Package] = []
    files: list[str] = []
    warnings: list[str] = []
    import sqlite3

    try:
        for blob in _blobs(path, content):
            try:
                header = parse_header(blob)
            except (HeaderError, struct.error) as exc:
                warnings.append(f"{path}: bad rpm header skipped: {exc}")
                continue
            if not header.name or header.name == "gpg-pubkey" or not header.version:
                continue
            packages.append(to_package(header, path))
            files.extend(header.files)
    except (sqlite3.Error, bdb.BdbError, ndb.NdbError, ValueError, struct.error, OverflowError) as exc:
        warnings.append(f"{path}: unreadable rpm database: {exc}")
    return packages, files, warnings


def _root_of(path: str) -> str:
    """The folder holding the root filesystem of a database at ``path`` ("" at the scanned root)."""
    for d in _DIRS:
        at = path.rfind(d)
        if at == 0 or (at > 0 and path[at - 1] == "/"):
            return path[:at]
    return ""


@dataclass(frozen=True, slots=True)
class RpmAnalyzer:
    """The rpm database; ``nested`` (``dir:`` mode) also below the scanned root."""

    name: str = "rpm"
    version: int = 2
    max_bytes: int = 512 * MiB
    nested: bool = False

    # Dispatch hints (see :mod:`garrison.inventory.base`).
    @property
    def paths(self) -> frozenset[str]:
        return WANTED_PATHS

    @property
    def suffixes(self) -> tuple[str, ...] | None:
        return () if self.nested else None  # (base names are enough; they go with suffixes)

    @property
    def basenames(self) -> frozenset[str] | None:
        return _FILES if self.nested else None

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path in WANTED_PATHS or (self.nested and path.endswith(_NESTED_TAILS))

    def analyze(self, file: FileInput) -> AnalysisResult:
        packages, files, warnings = parse_rpmdb(file.path, file.content)
        if not packages and not warnings:
            return EMPTY
        root = _root_of(file.path)
        if root:
            files = [root + f.lstrip("/") for f in files]
        return AnalysisResult(packages=tuple(packages), system_files=tuple(files), warnings=tuple(warnings))


#: The ``dir:`` mode analyzer: databases anywhere below the scanned folder.
NESTED = RpmAnalyzer(nested=True)
