"""Rust crates compiled into a binary by ``cargo auditable``: the ``.dep-v0`` ELF section.

The section holds zlib-compressed JSON ``{"packages": [{"name", "version", "source", "kind",
"dependencies", "root"}]}``. The section is found by walking the ELF section headers and the section
name string table ourselves (no ``pyelftools``); only ELF is supported (Linux images).
"""

from __future__ import annotations

import json
import struct
import zlib

from garrison.inventory import purl
from garrison.inventory.base import AnalysisResult, FileInput, MiB
from garrison.inventory.lang.elf import ElfError, elf_section
from garrison.inventory.lang.spec import BinaryAnalyzer
from garrison.model import Package, PackageType

SECTION = b".dep-v0"
MIN_SIZE = 4096
#: The decompressed dependency list is small; a bigger one is a bomb, not a binary.
MAX_JSON = 16 * MiB


def parse_audit_json(raw: bytes, location: str) -> list[Package]:
    decomp = zlib.decompressobj()
    text = decomp.decompress(raw, MAX_JSON)
    if decomp.unconsumed_tail:
        raise ValueError("dependency list larger than the limit")
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


def analyze_binary(file: FileInput) -> AnalysisResult:
    if not file.content.startswith(b"\x7fELF"):
        return AnalysisResult()
    try:
        raw = elf_section(file.content, SECTION)
        if raw is None:
            return AnalysisResult()
        return AnalysisResult(packages=tuple(parse_audit_json(raw, file.path)))
    except (ElfError, struct.error, zlib.error, ValueError, AttributeError) as exc:
        return AnalysisResult(warnings=(f"{file.path}: unreadable cargo-auditable data: {exc}",))


#: Executable files over :data:`MIN_SIZE` bytes; the content check happens in ``analyze_binary``.
ANALYZER = BinaryAnalyzer("rust-binary", 1, analyze_binary, min_size=MIN_SIZE)
