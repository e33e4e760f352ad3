"""Debian packages: ``var/lib/dpkg/status``, distroless ``status.d/*`` and the ``info/*.list`` file lists.

Advisories for Debian are keyed by *source* package and version, so the binary's ``Source:`` field
(``Source: openssl (3.0.11-1)``) is kept; when absent the source is the binary itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from garrison.inventory import purl
from garrison.inventory.base import EMPTY, AnalysisResult, FileInput, MiB
from garrison.model import Package, PackageType

STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d/"
INFO = "var/lib/dpkg/info/"

_WANTED_FIELDS = frozenset(("Package", "Status", "Version", "Architecture", "Source", "License"))
#: First characters of lines that can never hold a wanted field: continuation lines and other fields.
_SKIP_FIRST = frozenset(" \tBCDEHIMOR-#") | {""}
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?")


def _paragraphs(text: str) -> list[dict[str, str]]:
    """The wanted fields of each paragraph. A plain line loop: continuation lines (long Description
    and Conffiles blocks) are rejected by their first character, which is several times faster than a
    multi-line regex over the same text."""
    paras: list[dict[str, str]] = []
    current: dict[str, str] = {}
    wanted = _WANTED_FIELDS
    for line in text.split("\n"):
        first = line[:1]
        if first in _SKIP_FIRST:
            # "" is an empty line; a whitespace-only line also ends a paragraph (lenient readers agree).
            if (not first or line.isspace()) and current:
                paras.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep and key in wanted:
            current[key] = value.strip()
    if current:
        paras.append(current)
    return paras


def parse_status(text: str, location: str) -> tuple[list[Package], list[str]]:
    """Packages of a dpkg status file (or a distroless ``status.d`` file) and warnings.

    Paragraphs with a ``Status`` other than ``install ok installed`` (removed, half-configured…) are
    skipped; distroless ``status.d`` files carry no ``Status`` at all and count as installed.
    """
    packages: list[Package] = []
    warnings: list[str] = []
    for fields in _paragraphs(text):
        status = fields.get("Status")
        if status is not None and status != "install ok installed":
            continue
        name, version = fields.get("Package", ""), fields.get("Version", "")
        if not name or not version:
            warnings.append(f"{location}: paragraph without Package/Version skipped")
            continue
        arch = fields.get("Architecture", "")
        source_name, source_version = name, version
        if src := fields.get("Source"):
            m = _SOURCE.match(src)
            if m:
                source_name = m.group(1)
                source_version = m.group(2) or version
        license_ = fields.get("License", "")
        packages.append(
            Package(
                name=name,
                version=version,
                type=PackageType.DEB,
                purl=purl.deb(name, version, arch),
                locations=(location,),
                source_name=source_name,
                source_version=source_version,
                arch=arch,
                licenses=(license_,) if license_ else (),
            )
        )
    return packages, warnings


def parse_file_list(text: str) -> tuple[str, ...]:
    """``info/*.list`` (absolute paths) or distroless ``*.md5sums`` (``<md5>  <path>``) → relative paths."""
    out: list[str] = []
    for line in text.splitlines():
        if "  " in line and not line.startswith("/"):
            line = line.split("  ", 1)[1]
        line = line.strip().lstrip("/")
        if line and line != ".":
            out.append(line)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class DpkgAnalyzer:
    """dpkg status database, distroless per-package status files and the file lists."""

    name: str = "dpkg"
    version: int = 1
    max_bytes: int = 64 * MiB
    #: Dispatch hint (see :mod:`garrison.inventory.base`).
    path_prefixes: ClassVar[tuple[str, ...]] = ("var/lib/dpkg/",)

    def wants(self, path: str, size: int, mode: int) -> bool:
        if not path.startswith("var/lib/dpkg/"):
            return False
        if path == STATUS:
            return True
        if path.startswith(INFO):
            return path.endswith(".list")
        return path.startswith(STATUS_D) and "/" not in path[len(STATUS_D) :]

    def analyze(self, file: FileInput) -> AnalysisResult:
        text = file.content.decode("utf-8", "replace")
        if file.path.endswith((".list", ".md5sums")):
            return AnalysisResult(system_files=parse_file_list(text))
        packages, warnings = parse_status(text, file.path)
        if not packages and not warnings:
            return EMPTY
        return AnalysisResult(packages=tuple(packages), warnings=tuple(warnings))
