"""Just enough ELF to find a section by name: the header, the section header table, ``.shstrtab``.

Shared by the Go analyzer (``.go.buildinfo``) and the Rust analyzer (``.dep-v0``). Every offset read
from the file is bounds-checked; a corrupt table raises :class:`ElfError`.
"""

from __future__ import annotations

import struct

_SECTION_HEADERS = {f: struct.Struct(f) for f in ("<IIQQQQ", ">IIQQQQ", "<IIIIII", ">IIIIII")}


class ElfError(ValueError):
    """Not an ELF file, or its section table is corrupt."""


def _section_table(data: bytes) -> tuple[str, int, int, int, int] | None:
    """(header format, table offset, entry size, entry count, ``.shstrtab`` index) after the bounds
    checks; None when the file has no section header table."""
    if len(data) < 52 or data[:4] != b"\x7fELF":
        raise ElfError("not an ELF file")
    is64 = data[4] == 2
    o = "<" if data[5] == 1 else ">"
    if is64:
        if len(data) < 64:
            raise ElfError("truncated ELF header")
        (shoff,) = struct.unpack_from(o + "Q", data, 40)
        shentsize, shnum, shstrndx = struct.unpack_from(o + "HHH", data, 58)
        hdr = o + "IIQQQQ"
    else:
        (shoff,) = struct.unpack_from(o + "I", data, 32)
        shentsize, shnum, shstrndx = struct.unpack_from(o + "HHH", data, 46)
        hdr = o + "IIIIII"
    if shnum == 0 or shoff == 0:
        return None
    if shstrndx >= shnum or shoff + shnum * shentsize > len(data) or shentsize < struct.calcsize(hdr):
        raise ElfError("section header table out of bounds")
    return hdr, shoff, shentsize, shnum, shstrndx


def elf_sections(data: bytes) -> dict[bytes, tuple[int, int]] | None:
    """Section name → (file offset, size); None when the file has no section header table (stripped
    with ``sstrip`` or packed), which callers treat differently from "no such section"."""
    table = _section_table(data)
    if table is None:
        return None
    hdr, shoff, shentsize, shnum, shstrndx = table
    headers = [struct.unpack_from(hdr, data, shoff + i * shentsize) for i in range(shnum)]
    str_off, str_size = headers[shstrndx][4], headers[shstrndx][5]
    names = data[str_off : str_off + str_size]
    out: dict[bytes, tuple[int, int]] = {}
    for h in headers:
        name_off, off, size = h[0], h[4], h[5]
        end = names.find(b"\0", name_off)
        if end >= 0:
            out.setdefault(names[name_off:end], (off, size))
    return out


def elf_section_location(data: bytes, wanted: bytes) -> tuple[bool, tuple[int, int] | None]:
    """(has a section table, (file offset, size) of the first section named ``wanted`` or None).

    The same answer as ``elf_sections(data).get(wanted)`` without decoding every section header:
    the name string table is searched first, and most executables (neither Go nor Rust) stop there.
    """
    table = _section_table(data)
    if table is None:
        return False, None
    hdr, shoff, shentsize, shnum, shstrndx = table
    unpack = _SECTION_HEADERS[hdr].unpack_from
    strtab = unpack(data, shoff + shstrndx * shentsize)
    names = data[strtab[4] : strtab[4] + strtab[5]]
    key = wanted + b"\0"
    if key not in names:
        return True, None
    for i in range(shnum):
        h = unpack(data, shoff + i * shentsize)
        if names.startswith(key, h[0]):
            return True, (h[4], h[5])
    return True, None


def elf_section(data: bytes, wanted: bytes) -> bytes | None:
    """The bytes of the section named ``wanted``, or None when the ELF file has no such section."""
    _, loc = elf_section_location(data, wanted)
    if loc is None:
        return None
    off, size = loc
    if off + size > len(data):
        raise ElfError("section runs past end of file")
    return data[off : off + size]
