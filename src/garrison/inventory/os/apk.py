"""Alpine packages: ``lib/apk/db/installed``.

Each package is a block of ``X:value`` lines; ``P`` name, ``V`` version, ``A`` arch, ``o`` origin (the
source package that Alpine's secdb keys advisories by), ``L`` license, and ``F``/``R`` pairs for the
folders and files it installed (reported as system files, so pip packages installed by apk are not
reported twice).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from garrison.inventory import purl
from garrison.inventory.base import EMPTY, AnalysisResult, FileInput, MiB
from garrison.model import Package, PackageType

INSTALLED = "lib/apk/db/installed"


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


def parse_installed(text: str, location: str) -> tuple[list[Package], list[str], list[str]]:
    """Packages, installed file paths and warnings of an apk ``installed`` database."""
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
            files.append(f"{folder}/{value}" if folder else value)
        elif key in "PVAoL" and key not in fields:
            fields[key] = value.strip()
    flush()
    return packages, files, warnings


@dataclass(frozen=True, slots=True)
class ApkAnalyzer:
    name: str = "apk"
    version: int = 1
    max_bytes: int = 64 * MiB
    #: Dispatch hint (see :mod:`garrison.inventory.base`).
    paths: ClassVar[frozenset[str]] = frozenset((INSTALLED,))

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path == INSTALLED

    def analyze(self, file: FileInput) -> AnalysisResult:
        packages, files, warnings = parse_installed(file.content.decode("utf-8", "replace"), file.path)
        if not packages and not warnings:
            return EMPTY
        return AnalysisResult(packages=tuple(packages), system_files=tuple(files), warnings=tuple(warnings))
