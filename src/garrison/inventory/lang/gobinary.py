"""Go modules compiled into a binary, from the build info the Go linker embeds.

The build info starts with the 14-byte magic ``\\xff Go buildinf:``, then a pointer size byte and a
flags byte, padded to 32 bytes:

* Go ≥ 1.18 (flags & 2): the Go version and the module info follow inline as two uvarint-length
  strings.
* older: two pointers (at 16 and 16+ptrsize) to Go string headers (data pointer, length) in the
  binary's virtual address space; resolving them needs the ELF program headers.

The module info is text framed by 16-byte sentinels: ``path``, ``mod`` (main module), ``dep``
lines, and ``=>`` lines that replace the preceding ``dep``. The toolchain version is reported as the
``stdlib`` module so that standard-library advisories match.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from garrison.inventory import purl
from garrison.inventory.base import AnalysisResult, FileInput, MiB
from garrison.inventory.lang.elf import ElfError, elf_section_location
from garrison.inventory.lang.spec import BinaryAnalyzer
from garrison.model import Package, PackageType

MAGIC = b"\xff Go buildinf:"
#: Smallest Go binary worth opening (a static hello world is over 1 MiB; stay well below).
MIN_SIZE = 4096
EXEC_MAGICS = (
    b"\x7fELF",
    b"\xcf\xfa\xed\xfe",
    b"\xce\xfa\xed\xfe",
    b"\xfe\xed\xfa\xcf",
    b"\xfe\xed\xfa\xce",
    b"MZ",
)


class BuildInfoError(ValueError):
    """The build info is present but cannot be decoded."""


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data) and shift < 64:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
    raise BuildInfoError("bad uvarint")


def _inline_string(data: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = _uvarint(data, pos)
    if n > len(data) - pos:
        raise BuildInfoError("string runs past end of file")
    return data[pos : pos + n], pos + n


@dataclass(frozen=True, slots=True)
class _Segment:
    vaddr: int
    offset: int
    size: int


def _elf_segments(data: bytes) -> tuple[str, list[_Segment]]:
    """PT_LOAD segments of an ELF file and its byte order, for virtual → file offset mapping."""
    if data[:4] != b"\x7fELF" or len(data) < 64:
        raise BuildInfoError("pre-1.18 build info is only supported in ELF binaries")
    is64 = data[4] == 2
    order = "<" if data[5] == 1 else ">"
    if is64:
        (phoff,) = struct.unpack_from(order + "Q", data, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 54)
    else:
        (phoff,) = struct.unpack_from(order + "I", data, 28)
        phentsize, phnum = struct.unpack_from(order + "HH", data, 42)
    segs: list[_Segment] = []
    for i in range(min(phnum, 256)):
        base = phoff + i * phentsize
        if base + phentsize > len(data):
            break
        if is64:
            ptype, _flags, offset, vaddr, _paddr, filesz = struct.unpack_from(order + "IIQQQQ", data, base)
        else:
            ptype, offset, vaddr, _paddr, filesz = struct.unpack_from(order + "IIIII", data, base)
        if ptype == 1:  # PT_LOAD
            segs.append(_Segment(vaddr, offset, filesz))
    return order, segs


def _read_va(data: bytes, segs: list[_Segment], vaddr: int, size: int) -> bytes:
    for s in segs:
        if s.vaddr <= vaddr and vaddr + size <= s.vaddr + s.size:
            start = s.offset + (vaddr - s.vaddr)
            return data[start : start + size]
    raise BuildInfoError(f"address {vaddr:#x} not in any loaded segment")


def _pointer_strings(data: bytes, at: int, ptr_size: int) -> tuple[bytes, bytes]:
    """Pre-1.18 format: follow the two pointers to Go string headers."""
    order, segs = _elf_segments(data)
    if ptr_size not in (4, 8):
        raise BuildInfoError(f"bad pointer size {ptr_size}")
    fmt = order + ("Q" if ptr_size == 8 else "I")
    out: list[bytes] = []
    for k in range(2):
        (str_hdr,) = struct.unpack_from(fmt, data, at + 16 + k * ptr_size)
        hdr = _read_va(data, segs, str_hdr, 2 * ptr_size)
        (ptr,) = struct.unpack_from(fmt, hdr, 0)
        (length,) = struct.unpack_from(fmt, hdr, ptr_size)
        if length > 16 * MiB:
            raise BuildInfoError("implausible string length")
        out.append(_read_va(data, segs, ptr, length) if length else b"")
    return out[0], out[1]


def _search_range(data: bytes) -> tuple[int, int] | None:
    """Where to look for the magic: the ``.go.buildinfo`` section of an ELF file (None when an ELF file
    with a section table has none: not a Go binary, answered without scanning megabytes), else the
    whole file (Mach-O, PE, section-stripped ELF)."""
    if data.startswith(b"\x7fELF"):
        try:
            has_table, loc = elf_section_location(data, b".go.buildinfo")
        except (ElfError, struct.error):
            has_table = False
        if has_table:
            if loc is None:
                return None
            return loc[0], min(len(data), loc[0] + loc[1])
    return 0, len(data)


def read_build_info(data: bytes) -> tuple[str, str] | None:
    """(Go version, module info text) of a binary, or None when it has no Go build info."""
    where = _search_range(data)
    if where is None:
        return None
    start, end = where
    pos = data.find(MAGIC, start, end)
    while pos >= 0:
        if len(data) - pos >= 32:
            ptr_size, flags = data[pos + 14], data[pos + 15]
            if flags & 2:
                version, nxt = _inline_string(data, pos + 32)
                modinfo, _ = _inline_string(data, nxt)
            else:
                version, modinfo = _pointer_strings(data, pos, ptr_size)
            if version.startswith((b"go", b"devel")):
                return version.decode("utf-8", "replace"), _strip_sentinels(modinfo).decode(
                    "utf-8", "replace"
                )
        pos = data.find(MAGIC, pos + 1, end)
    return None


def _strip_sentinels(modinfo: bytes) -> bytes:
    if len(modinfo) >= 33 and modinfo[-17] == ord("\n"):
        return modinfo[16:-16]
    return modinfo


def _module(path: str, version: str, location: str) -> Package:
    version = "" if version == "(devel)" else version
    return Package(
        name=path,
        version=version,
        type=PackageType.GO,
        purl=purl.golang(path, version),
        locations=(location,),
    )


def parse_modinfo(go_version: str, modinfo: str, location: str) -> list[Package]:
    """Main module, dependencies (after ``=>`` replacements) and ``stdlib`` at the toolchain version."""
    main: Package | None = None
    deps: list[tuple[str, str]] = []
    for line in modinfo.splitlines():
        parts = line.split("\t")
        kind = parts[0]
        if kind == "mod" and len(parts) >= 3:
            main = _module(parts[1], parts[2], location)
        elif kind == "dep" and len(parts) >= 3:
            deps.append((parts[1], parts[2]))
        elif kind == "=>" and len(parts) >= 3 and deps:
            deps[-1] = (parts[1], parts[2])
    packages = [main] if main else []
    packages.extend(_module(p, v, location) for p, v in deps)
    # "go1.21.5" or "go1.22.0 X:boringcrypto" → v1.21.5; devel toolchains have no usable version.
    toolchain = go_version.split()[0] if go_version else ""
    if toolchain.startswith("go") and toolchain[2:3].isdigit():
        packages.append(_module("stdlib", "v" + toolchain[2:], location))
    return packages


def analyze_binary(file: FileInput) -> AnalysisResult:
    data = file.content
    if not data.startswith(EXEC_MAGICS):
        return AnalysisResult()
    try:
        info = read_build_info(data)
    except (BuildInfoError, struct.error) as exc:
        return AnalysisResult(warnings=(f"{file.path}: unreadable Go build info: {exc}",))
    if info is None:
        return AnalysisResult()
    return AnalysisResult(packages=tuple(parse_modinfo(info[0], info[1], file.path)))


#: Executable files over :data:`MIN_SIZE` bytes; the content check happens in ``analyze_binary``.
ANALYZER = BinaryAnalyzer("go-binary", 1, analyze_binary, min_size=MIN_SIZE)
