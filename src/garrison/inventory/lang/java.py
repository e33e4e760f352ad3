"""Java archives (jar, war, ear, and jars nested in them): Maven coordinates of what they contain.

Per archive: every ``pom.properties`` with coordinates is a package (``META-INF/maven/<g>/<a>/``
usually; shaded jars carry several, Spring Boot keeps the application's under ``BOOT-INF/classes``).
An archive without any falls back to ``META-INF/MANIFEST.MF`` (a Jenkins plugin's ``Short-Name``,
``Implementation-*``, ``Bundle-*``) and the file name (see :func:`_from_manifest`). Nested archives
(``BOOT-INF/lib``, ``WEB-INF/lib``, ``lib/``…) are opened recursively.

A large archive comes as a random-access reader (``FileInput.read_at``): only the central directory
and the members opened are read, never the whole file.

Zip bombs: every byte decompressed is charged to one budget per top-level file, nested archives
are read only to :data:`MAX_DEPTH`, entries are read with a hard cap rather than trusting declared
sizes, and an archive with too many entries is skipped. Exceeding a limit gives a warning and the
packages found so far.
"""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from garrison.inventory import purl
from garrison.inventory.base import AnalysisResult, FileInput, MiB
from garrison.inventory.lang.spec import FileAnalyzer
from garrison.inventory.reader import ReaderIO
from garrison.model import Package, PackageType

ARCHIVE_SUFFIXES = (".jar", ".war", ".ear", ".par", ".sar", ".jpi", ".hpi", ".kar", ".nar")
#: Total bytes decompressed from one top-level archive (its nested archives included).
MAX_TOTAL_BYTES = 512 * MiB
#: Nesting: the file itself is depth 0, ``BOOT-INF/lib/x.jar`` depth 1, a jar inside that depth 2.
MAX_DEPTH = 3
MAX_ENTRIES = 100_000
#: A pom.properties or a manifest is tiny; anything bigger is not what it claims to be.
MAX_SMALL_FILE = 1 * MiB

_FILENAME_VERSION = re.compile(r"^(?P<artifact>.+?)-(?P<version>\d[\w.\-+]*)$")
#: A Maven-style identifier (no spaces: ``Implementation-Title: Apache Commons Text`` is prose).
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")

if TYPE_CHECKING:
    import zipfile


class _LimitExceeded(Exception):
    pass


@dataclass(slots=True)
class _Scan:
    """State of one top-level archive scan: the shared decompression budget and what was found."""

    location: str
    #: Bytes that may still be decompressed.
    budget: int
    packages: list[Package] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    def read(self, zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
        """Read one entry, charging the budget; never trusts the declared size alone."""
        limit = min(cap, self.budget)
        if info.file_size > limit:
            raise _LimitExceeded(f"{info.filename} declares {info.file_size} bytes, over the limit")
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise _LimitExceeded(f"{info.filename} inflates past the limit")
        self.budget -= len(data)
        return data

    def add(self, group: str, artifact: str, version: str, licenses: tuple[str, ...] = ()) -> None:
        key = (group, artifact, version)
        if not artifact or not version or key in self.seen:
            return
        self.seen.add(key)
        self.packages.append(
            Package(
                name=f"{group}:{artifact}" if group else artifact,
                version=version,
                type=PackageType.JAVA,
                purl=purl.maven(group, artifact, version),
                locations=(self.location,),
                namespace=group,
                licenses=licenses,
            )
        )


def parse_properties(text: str) -> dict[str, str]:
    """Java ``.properties`` (the simple subset Maven writes: ``key=value``, ``#`` comments)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def parse_manifest(text: str) -> dict[str, str]:
    """Main section of a ``MANIFEST.MF``: ``Key: value`` with 72-byte lines continued by a leading space."""
    out: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line:
            break
        if line.startswith(" ") and last:
            out[last] += line[1:]
            continue
        key, sep, value = line.partition(":")
        if sep:
            last = key.strip()
            out[last] = value.strip()
    return out


def _from_manifest(manifest: dict[str, str], archive_name: str) -> tuple[str, str, str]:
    """(group, artifact, version) of an archive without ``pom.properties``.

    A Jenkins plugin names itself (``Group-Id``, ``Short-Name``, ``Plugin-Version``). Otherwise the
    artifact is the file name's (``guava-33.0.jar``) or, when the file name carries no version
    (``app.jar``), the ``Implementation-Title`` (when it is an identifier, not prose) or the last part
    of the OSGi ``Bundle-SymbolicName``; the group is ``Implementation-Vendor-Id`` or, as Trivy
    derives it, the symbolic name without its last part (``net.minidev.json-smart`` → ``net.minidev``).
    """
    if manifest.get("Short-Name") and manifest.get("Plugin-Version"):
        return manifest.get("Group-Id", ""), manifest["Short-Name"], manifest["Plugin-Version"]
    base = archive_name.rsplit("/", 1)[-1]
    for suffix in ARCHIVE_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    m = _FILENAME_VERSION.match(base)
    symbolic = manifest.get("Bundle-SymbolicName", "").split(";", 1)[0].strip()
    title = manifest.get("Implementation-Title", "").strip()
    if m:
        artifact = m.group("artifact")
    elif _IDENTIFIER.match(title):
        artifact = title
    elif _IDENTIFIER.match(symbolic):
        artifact = symbolic.rsplit(".", 1)[-1]
    else:
        artifact = base
    version = (
        manifest.get("Implementation-Version")
        or manifest.get("Bundle-Version")
        or manifest.get("Specification-Version")
        or (m.group("version") if m else "")
    )
    group = manifest.get("Implementation-Vendor-Id", "")
    if not group and "." in symbolic and _IDENTIFIER.match(symbolic):
        group = symbolic.rsplit(".", 1)[0]
    return group, artifact, version


def _scan_archive(scan: _Scan, fp: IO[bytes], archive_name: str, depth: int) -> None:
    import zipfile  # lazy: keeps start-up fast when no jar is read

    try:
        zf = zipfile.ZipFile(fp)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        scan.warnings.append(f"{scan.location}: {archive_name}: not a zip archive: {exc}")
        return
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            scan.warnings.append(f"{scan.location}: {archive_name}: {len(infos)} entries, skipped")
            return
        found_pom = False
        manifest: dict[str, str] = {}
        nested: list[zipfile.ZipInfo] = []
        for info in infos:
            name = info.filename
            if name.endswith("/pom.properties") or name == "pom.properties":
                # META-INF/maven/<g>/<a>/ usually, but anywhere counts (BOOT-INF/classes/META-INF/…,
                # WEB-INF/classes/…, shaded copies), as Syft reads them.
                props = parse_properties(scan.read(zf, info, MAX_SMALL_FILE).decode("utf-8", "replace"))
                group, artifact, version = (props.get(k, "") for k in ("groupId", "artifactId", "version"))
                if artifact and version:
                    found_pom = True
                    scan.add(group, artifact, version)
            elif name == "META-INF/MANIFEST.MF":
                manifest = parse_manifest(scan.read(zf, info, MAX_SMALL_FILE).decode("utf-8", "replace"))
            elif name.lower().endswith(ARCHIVE_SUFFIXES) and not info.is_dir():
                nested.append(info)
        if not found_pom:
            group, artifact, version = _from_manifest(manifest, archive_name)
            scan.add(group, artifact, version)
        for info in nested:
            if depth + 1 > MAX_DEPTH:
                scan.warnings.append(f"{scan.location}: {info.filename}: nested deeper than {MAX_DEPTH}")
                continue
            inner = scan.read(zf, info, scan.budget)
            _scan_archive(scan, io.BytesIO(inner), info.filename, depth + 1)


def analyze_archive(file: FileInput) -> AnalysisResult:
    import zipfile

    scan = _Scan(location=file.path, budget=MAX_TOTAL_BYTES)
    if file.reader is not None:
        # A large archive: only its central directory and the members opened are read.
        fp: IO[bytes] = io.BufferedReader(ReaderIO(file.read_at, file.size), 64 * 1024)
    else:
        fp = io.BytesIO(file.content)
    try:
        _scan_archive(scan, fp, file.path, 0)
    except _LimitExceeded as exc:
        scan.warnings.append(f"{file.path}: zip bomb guard: {exc}")
    except (
        zipfile.BadZipFile,
        zlib.error,
        OSError,
        EOFError,
        ValueError,
        NotImplementedError,
        RuntimeError,
    ) as exc:
        # Corrupt member data, unsupported compression, encrypted entries.
        scan.warnings.append(f"{file.path}: unreadable archive member: {exc}")
    return AnalysisResult(packages=tuple(scan.packages), warnings=tuple(scan.warnings))


ANALYZER = FileAnalyzer(
    name="java-archive",
    version=2,
    parse=analyze_archive,
    suffixes=ARCHIVE_SUFFIXES,
    max_bytes=4096 * MiB,  # read through a reader, never whole; decompression has its own budget
    random_access=True,
)
