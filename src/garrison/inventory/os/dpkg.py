"""Debian packages: ``var/lib/dpkg/status``, distroless ``status.d/*`` and the ``info/*.list`` file lists.

Advisories for Debian are keyed by *source* package and version, so the binary's ``Source:`` field
(``Source: openssl (3.0.11-1)``) is kept; when absent the source is the binary itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from garrison.inventory import purl
from garrison.inventory.base import EMPTY, AnalysisResult, FileInput, MiB
from garrison.model import Package, PackageType

DIR = "var/lib/dpkg/"
STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d/"
INFO = "var/lib/dpkg/info/"
#: A Debian version: ``[epoch:]upstream[-revision]``, the upstream part starting with a digit (the
#: rules of dpkg's parser, which Trivy's go-deb-version follows; such entries are dropped by both).
_VERSION = re.compile(r"^(?:\d+:)?\d[A-Za-z0-9.+~:-]*$")
_REVISION = re.compile(r"^[A-Za-z0-9.+~]+$")

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


def valid_version(version: str) -> bool:
    """Whether ``version`` is a Debian version dpkg can parse (a colon only after a numeric epoch)."""
    if not _VERSION.match(version):
        return False
    epoch, colon, rest = version.partition(":")
    if colon and not (epoch.isdigit() and rest[:1].isdigit()):
        return False
    upstream, dash, revision = (rest if colon else version).rpartition("-")
    if dash:
        return bool(upstream) and upstream[:1].isdigit() and bool(_REVISION.match(revision))
    return True


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
        if not valid_version(version):
            warnings.append(f"{location}: {name}: invalid version {version!r} skipped")
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


def parse_file_list(text: str, root: str = "") -> tuple[str, ...]:
    """``info/*.list`` (absolute paths) or distroless ``*.md5sums`` (``<md5>  <path>``) → paths relative
    to the scanned root (``root`` is the folder of the root filesystem the list belongs to)."""
    out: list[str] = []
    for line in text.splitlines():
        if "  " in line and not line.startswith("/"):
            line = line.split("  ", 1)[1]
        line = line.strip().lstrip("/")
        if line and line != ".":
            out.append(root + line)
    return tuple(out)


def _in_dpkg_dir(rel: str) -> bool:
    """``rel`` is a path below ``var/lib/dpkg/`` that the analyzer reads."""
    if rel == "status":
        return True
    if rel.startswith("info/"):
        return rel.endswith(".list")
    return rel.startswith("status.d/") and "/" not in rel[len("status.d/") :]


@dataclass(frozen=True, slots=True)
class DpkgAnalyzer:
    """dpkg status database, distroless per-package status files and the file lists.

    ``nested`` (``dir:`` mode) also reads databases below the scanned folder's root, for a folder that
    holds several root filesystems (``rootfs-a/var/lib/dpkg/status``); their file lists are then
    relative to that root filesystem's folder.
    """

    name: str = "dpkg"
    version: int = 2
    max_bytes: int = 64 * MiB
    nested: bool = False

    # Dispatch hints (see :mod:`garrison.inventory.base`): a prefix at the root, anywhere when nested.
    @property
    def path_prefixes(self) -> tuple[str, ...] | None:
        return None if self.nested else (DIR,)

    @property
    def path_infixes(self) -> tuple[str, ...] | None:
        return (DIR,) if self.nested else None

    def wants(self, path: str, size: int, mode: int) -> bool:
        if path.startswith(DIR):
            return _in_dpkg_dir(path[len(DIR) :])
        if not self.nested:
            return False
        at = path.find("/" + DIR)
        return at >= 0 and _in_dpkg_dir(path[at + 1 + len(DIR) :])

    def analyze(self, file: FileInput) -> AnalysisResult:
        text = file.content.decode("utf-8", "replace")
        if file.path.endswith((".list", ".md5sums")):
            root = file.path[: file.path.rfind(DIR)] if self.nested else ""
            return AnalysisResult(system_files=parse_file_list(text, root))
        packages, warnings = parse_status(text, file.path)
        if not packages and not warnings:
            return EMPTY
        return AnalysisResult(packages=tuple(packages), warnings=tuple(warnings))


#: The ``dir:`` mode analyzer: databases anywhere below the scanned folder.
NESTED = DpkgAnalyzer(nested=True)
