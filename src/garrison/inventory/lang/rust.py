"""Rust crates compiled into a binary by ``cargo auditable``: the ``.dep-v0`` ELF section.

The section holds zlib-compressed JSON ``{"packages": [{"name", "version", "source", "kind",
"dependencies", "root"}]}``. The section is found by walking the ELF section headers and the section
name string table ourselves (no ``pyelftools``); only ELF is supported (Linux images).
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

from garrison.inventory import purl
from garrison.inventory.base import AnalysisResult, FileInput, MiB
from garrison.model import Package, PackageType

SECTION = b".dep-v0"
MIN_SIZE = 4096
#: The decompressed dependency list is small; a bigger one is a bomb, not a binary.
MAX_JSON = 16 * MiB


class ElfError(ValueError):
    """Not an ELF file, or its section table is corrupt."""


def elf_section(data: bytes, wanted: bytes) -> bytes | None:
    """The bytes of the section named ``wanted``, or None when the ELF file has no such section."""
    if len(data) < 52 or data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    is64 = data[4] == 2
    o = "<" if data[5] == 1 else ">"
    if is64:
        if len(data) < 64:
            raise ElfError("truncated ELF header")
        (shoff,) = struct.unpack_from(o + "Q", data, 40)
        shentsize, shnum, shstrndx = struct.unpack_from(o + "HHH", data, 58)
        hdr, off_i, size_i = o + "IIQQQQ", 4, 5
    else:
        (shoff,) = struct.unpack_from(o + "I", data, 32)
        shentsize, shnum, shstrndx = struct.unpack_from(o + "HHH", data, 46)
        hdr, off_i, size_i = o + "IIIIII", 4, 5
    if shnum == 0 or shoff == 0:
        return None
    if shstrndx >= shnum or shoff + shnum * shentsize > len(data) or shentsize < struct.calcsize(hdr):
        raise ElfError("section header table out of bounds")

    def section(i: int) -> tuple[int, int, int]:
        f = struct.unpack_from(hdr, data, shoff + i * shentsize)
        return f[0], f[off_i], f[size_i]

    _, str_off, str_size = section(shstrndx)
    names = data[str_off : str_off + str_size]
    for i in range(shnum):
        name_off, off, size = section(i)
        end = names.find(b"\0", name_off)
        if end >= 0 and names[name_off:end] == wanted:
            if off + size > len(data):
                raise ElfError("section runs past end of file")
            return data[off : off + size]
    return None


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


@dataclass(frozen=True, slots=True)
class RustBinaryAnalyzer:
    name: str = "rust-binary"
    version: int = 1
    max_bytes: int = 512 * MiB

    def wants(self, path: str, size: int, mode: int) -> bool:
        return bool(mode & 0o111) and size >= MIN_SIZE

    def analyze(self, file: FileInput) -> AnalysisResult:
        return analyze_binary(file)
