"""Rust crates compiled into a binary by ``cargo auditable``: the ``.dep-v0`` ELF section.

The section holds zlib-compressed JSON ``{"packages": [{"name", "version", "source", "kind",
"dependencies", "root"}]}``. The section is ``.dep-v0`` in ELF and PE files and ``__DATA,.dep-v0``
in Mach-O files, found by :mod:`.exe` from the headers alone; it is read and inflated in chunks.
"""

from __future__ import annotations

import json
import struct
import zlib

from garrison.inventory import purl
from garrison.inventory.base import AnalysisResult, FileInput, MiB
from garrison.inventory.lang.exe import MAGICS, Exe, ExeError, executables
from garrison.inventory.lang.spec import BinaryAnalyzer
from garrison.model import Package, PackageType

MIN_SIZE = 4096
#: The decompressed dependency list is small; a bigger one is a bomb, not a binary.
MAX_JSON = 16 * MiB


def parse_audit_json(text: bytes, location: str) -> list[Package]:
    """Packages of cargo-auditable's (inflated) JSON."""
    doc = json.loads(text)
    packages: list[Package] = []
    for entry in doc.get("packages", []):
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            continue
        packages.append(
            Package(
                name=name,
                version=version,
                type=PackageType.CARGO,
                purl=purl.cargo(name, version),
                locations=(location,),
            )
        )
    return packages


#: Where cargo-auditable puts the data in each format (see :mod:`.exe` for the naming).
_SECTION_NAMES = {"elf": ".dep-v0", "pe": ".dep-v0", "macho": "__DATA,.dep-v0"}
_CHUNK = 1024 * 1024


def _inflate_section(exe: Exe, offset: int, size: int) -> bytes:
    """The section's zlib stream inflated chunk by chunk, at most :data:`MAX_JSON` bytes out."""
    decomp = zlib.decompressobj()
    out: list[bytes] = []
    room = MAX_JSON
    pos, end = offset, offset + size
    while pos < end and not decomp.eof:
        chunk = exe.read(pos, min(_CHUNK, end - pos))
        pos += len(chunk)
        part = decomp.decompress(chunk, room + 1)
        room -= len(part)
        out.append(part)
        if room < 0 or decomp.unconsumed_tail:
            raise ValueError("dependency list larger than the limit")
    return b"".join(out)


def analyze_binary(file: FileInput) -> AnalysisResult:
    if not file.read_at(0, 4).startswith(MAGICS):
        return AnalysisResult()
    try:
        for exe in executables(file):
            section = exe.section(_SECTION_NAMES[exe.format])
            if section is not None and section.size:
                raw = _inflate_section(exe, section.offset, section.size)
                return AnalysisResult(packages=tuple(parse_audit_json(raw, file.path)))
        return AnalysisResult()
    except (ExeError, struct.error, zlib.error, ValueError, AttributeError) as exc:
        return AnalysisResult(warnings=(f"{file.path}: unreadable cargo-auditable data: {exc}",))


#: Executable files over :data:`MIN_SIZE` bytes; the content check happens in ``analyze_binary``.
ANALYZER = BinaryAnalyzer("rust-binary", 2, analyze_binary, min_size=MIN_SIZE)
