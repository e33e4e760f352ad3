"""Alpine packages: ``lib/apk/db/installed`` (``usr/lib/apk/db/installed`` since apk 3).

Each package is a block of ``X:value`` lines; ``P`` name, ``V`` version, ``A`` arch, ``o`` origin (the
source package that Alpine's secdb keys advisories by), ``L`` license, and ``F``/``R`` pairs for the
folders and files it installed (reported as system files, so pip packages installed by apk are not
reported twice).
"""

from __future__ import annotations

from dataclasses import dataclass

from garrison.inventory import purl
from garrison.inventory.base import EMPTY, AnalysisResult, FileInput, MiB
from garrison.model import Package, PackageType

INSTALLED = "lib/apk/db/installed"
#: apk 3 (and Alpine's ``/usr`` merge) moved the database under ``usr/``.
INSTALLED_USR = "usr/lib/apk/db/installed"
PATHS = frozenset((INSTALLED, INSTALLED_USR))


def _package(fields: dict[str, str], location: str) -> Package:
    name, version, arch = fields["P"], fields["V"], fields.get("A", "")
    license_ = fields.get("L", "")
    return Package(
        name=name,
        version=version,
        type=PackageType.APK,
        purl=purl.apk(name, version, arch),
        locations=(location,),
        source_name=fields.get("o", "") or name,
        source_version=version,
        arch=arch,
        licenses=(license_,) if license_ else (),
    )


def parse_installed(text: str, location: str, root: str = "") -> tuple[list[Package], list[str], list[str]]:
    """Packages, installed file paths (prefixed with ``root``, the folder of the root filesystem the
    database belongs to) and warnings of an apk ``installed`` database."""
    packages: list[Package] = []
    files: list[str] = []
    warnings: list[str] = []
    fields: dict[str, str] = {}
    folder = ""
    in_block = False

    def flush() -> None:
        if not in_block:
            return
        if fields.get("P") and fields.get("V"):
            packages.append(_package(fields, location))
        else:
            warnings.append(f"{location}: package block without P/V skipped")
        fields.clear()

    for line in text.split("\n"):
        if len(line) < 2 or line[1] != ":":
            if not line.strip():
                flush()
                folder, in_block = "", False
            continue
        in_block = True
        key, value = line[0], line[2:]
        if key == "F":
            folder = value
        elif key == "R":
            files.append(f"{root}{folder}/{value}" if folder else root + value)
        elif key in "PVAoL" and key not in fields:
            fields[key] = value.strip()
    flush()
    return packages, files, warnings


def _root_of(path: str) -> str:
    """The folder holding the root filesystem of a database at ``path`` ("" at the scanned root)."""
    for suffix in (INSTALLED_USR, INSTALLED):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return ""


@dataclass(frozen=True, slots=True)
class ApkAnalyzer:
    """``lib/apk/db/installed`` or ``usr/lib/apk/db/installed``; ``nested`` (``dir:`` mode) also below
    the scanned root (a folder of root filesystems)."""

    name: str = "apk"
    version: int = 2
    max_bytes: int = 64 * MiB
    nested: bool = False

    # Dispatch hints (see :mod:`garrison.inventory.base`).
    @property
    def paths(self) -> frozenset[str]:
        return PATHS

    @property
    def suffixes(self) -> tuple[str, ...] | None:
        return () if self.nested else None  # (base names are enough; they go with suffixes)

    @property
    def basenames(self) -> frozenset[str] | None:
        return frozenset(("installed",)) if self.nested else None

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path in PATHS or (self.nested and path.endswith("/" + INSTALLED))

    def analyze(self, file: FileInput) -> AnalysisResult:
        root = _root_of(file.path)
        packages, files, warnings = parse_installed(file.content.decode("utf-8", "replace"), file.path, root)
        if not packages and not warnings:
            return EMPTY
        return AnalysisResult(packages=tuple(packages), system_files=tuple(files), warnings=tuple(warnings))


#: The ``dir:`` mode analyzer: databases anywhere below the scanned folder.
NESTED = ApkAnalyzer(nested=True)
