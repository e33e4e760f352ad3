"""Just enough ELF, PE and Mach-O to find a section by name, read through ``read_at``.

Shared by the Go analyzer (build info) and the Rust analyzer (cargo-auditable's ``.dep-v0``). Only
headers, the section (or load command) table and the section name table are read; the caller then
reads the one section it wants. Every offset and count read from the file is bounds-checked, and a
corrupt table raises :class:`ExeError`. A universal (fat) Mach-O file yields one :class:`Exe` per
architecture slice.

Section names: ELF and PE sections by their own name (PE long names through the COFF string
table), Mach-O sections as ``segment,section`` (``__DATA,__go_buildinfo``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

#: First bytes of the files :func:`executables` understands.
MAGICS = (
    b"\x7fELF",
    b"MZ",
    b"\xcf\xfa\xed\xfe",
    b"\xce\xfa\xed\xfe",
    b"\xfe\xed\xfa\xcf",
    b"\xfe\xed\xfa\xce",
    b"\xca\xfe\xba\xbe",
    b"\xca\xfe\xba\xbf",
)
#: Caps on what a header may make us read: real tables are kilobytes.
_MAX_TABLE = 16 * 1024 * 1024
_MAX_SECTIONS = 65_535
_MAX_FAT_ARCHES = 20  # as Go's debug/macho: a Java class file starts with the same magic


class ExeError(ValueError):
    """Not a well-formed executable: a header or table points outside the file."""


class Blob(Protocol):
    """What the parsers read from (a :class:`~garrison.inventory.base.FileInput` is one)."""

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, n: int) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    #: Offset of the section's bytes in the file (in the slice, for a fat Mach-O) and their count;
    #: zero-filled sections (``.bss``) have ``size`` 0.
    offset: int
    size: int
    vaddr: int


@dataclass(frozen=True, slots=True)
class Segment:
    """A loaded range: virtual address → file offset (ELF ``PT_LOAD``, Mach-O segment, PE section)."""

    vaddr: int
    offset: int
    size: int
    #: Writable initialized data that is not code: where the Go linker puts its build info when it
    #: gives it no section of its own (Go's ``debug/buildinfo`` looks there in the same order).
    data: bool


class Exe:
    """One executable image: its format, byte order, sections by name and loaded segments."""

    __slots__ = ("_sections", "_segments", "blob", "format", "order")

    def __init__(
        self,
        format: str,
        blob: Blob,
        sections: tuple[Section, ...] | None,
        segments: tuple[Segment, ...],
        order: str,
    ) -> None:
        self.format = format  # "elf", "pe", "macho"
        self.blob = blob
        self.order = order  # struct byte order, "<" or ">"
        self._sections = sections
        self._segments = segments

    @property
    def has_section_table(self) -> bool:
        """False for an ELF file without one (stripped with ``sstrip``, packed)."""
        return self._sections is not None

    @property
    def segments(self) -> tuple[Segment, ...]:
        return self._segments

    def section(self, name: str) -> Section | None:
        for s in self._sections or ():
            if s.name == name:
                return s
        return None

    def read(self, offset: int, n: int) -> bytes:
        """Exactly ``n`` bytes at ``offset``; :class:`ExeError` when the file is shorter."""
        if offset < 0 or n < 0 or offset + n > self.blob.size:
            raise ExeError(f"read of {n} bytes at {offset} runs past the end of the file")
        data = self.blob.read_at(offset, n)
        if len(data) != n:
            raise ExeError("short read")
        return data

    def read_va(self, vaddr: int, n: int) -> bytes:
        """``n`` bytes at a virtual address, through the loaded segments."""
        for s in self.segments:
            if s.vaddr <= vaddr and vaddr + n <= s.vaddr + s.size:
                return self.read(s.offset + (vaddr - s.vaddr), n)
        raise ExeError(f"address {vaddr:#x} is not in any loaded segment")


@dataclass(frozen=True, slots=True)
class _Slice:
    """One architecture of a fat Mach-O file, as a blob of its own."""

    outer: Blob
    base: int
    length: int

    @property
    def size(self) -> int:
        return self.length

    def read_at(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self.length - offset))
        return self.outer.read_at(self.base + offset, n)


def _read(blob: Blob, offset: int, n: int) -> bytes:
    if offset < 0 or n < 0 or offset + n > blob.size:
        raise ExeError("header or table out of bounds")
    data = blob.read_at(offset, n)
    if len(data) != n:
        raise ExeError("short read")
    return data


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1")


# --- ELF ----------------------------------------------------------------------------------------


#: ELF section header layouts (name, type, flags, address, offset, size) by byte order and class.
_SH = {f: struct.Struct(f) for f in ("<IIQQQQ", ">IIQQQQ", "<IIIIII", ">IIIIII")}


class _ElfExe(Exe):
    """An ELF file whose tables are read on first use: most executables in an image are neither Go
    nor Rust, and the section name table alone (searched for the wanted name before any section
    header is decoded) says so."""

    __slots__ = ("_loaded_segments", "_names", "_ph", "_sh", "_table")

    def __init__(self, blob: Blob, hdr: bytes) -> None:
        if len(hdr) < 52:
            raise ExeError("truncated ELF header")
        is64 = hdr[4] == 2
        o = "<" if hdr[5] == 1 else ">"
        if is64:
            if len(hdr) < 64:
                raise ExeError("truncated ELF header")
            phoff, shoff = struct.unpack_from(o + "QQ", hdr, 32)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(o + "HHHHH", hdr, 54)
            fmt = o + "IIQQQQ"
        else:
            phoff, shoff = struct.unpack_from(o + "II", hdr, 28)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(o + "HHHHH", hdr, 42)
            fmt = o + "IIIIII"
        super().__init__("elf", blob, None, (), o)
        #: (offset, entry size, count, format) of the program and section header tables.
        self._ph = (phoff, phentsize, phnum, fmt, is64) if phnum and phoff else None
        self._sh = (shoff, shentsize, shnum, shstrndx, fmt) if shnum and shoff else None
        self._table: bytes | None = None
        self._names = b""
        self._loaded_segments: tuple[Segment, ...] | None = None

    @property
    def has_section_table(self) -> bool:
        return self._sh is not None

    def _load_names(self) -> bytes:
        """The section name table (through its one section header; the others are not read yet)."""
        if not self._names:
            assert self._sh is not None
            shoff, entsize, num, strndx, fmt = self._sh
            if strndx >= num or entsize < _SH[fmt].size or num * entsize > _MAX_TABLE:
                raise ExeError("section header table out of bounds")
            if shoff + num * entsize > self.blob.size:
                raise ExeError("section header table out of bounds")
            entry = _read(self.blob, shoff + strndx * entsize, _SH[fmt].size)
            _, _, _, _, str_off, str_size = _SH[fmt].unpack(entry)
            if str_size > _MAX_TABLE:
                raise ExeError("section name table too large")
            self._names = _read(self.blob, str_off, str_size) or b"\0"
        return self._names

    def section(self, name: str) -> Section | None:
        if self._sh is None:
            return None
        key = name.encode("latin-1") + b"\0"
        if key not in self._load_names():
            return None
        shoff, entsize, num, _, fmt = self._sh
        if self._table is None:
            self._table = _read(self.blob, shoff, num * entsize)
        table = self._table
        unpack = _SH[fmt].unpack_from
        for i in range(num):
            name_off, stype, _flags, addr, off, size = unpack(table, i * entsize)
            if self._names.startswith(key, name_off):
                return Section(name, off, 0 if stype == 8 else size, addr)  # 8: SHT_NOBITS
        return None

    @property
    def segments(self) -> tuple[Segment, ...]:
        if self._loaded_segments is None:
            self._loaded_segments = self._load_segments()
        return self._loaded_segments

    def _load_segments(self) -> tuple[Segment, ...]:
        if self._ph is None:
            return ()
        phoff, entsize, num, fmt, is64 = self._ph
        if entsize < struct.calcsize(fmt):
            raise ExeError("bad program header size")
        table = _read(self.blob, phoff, num * entsize)
        out: list[Segment] = []
        for i in range(num):
            if is64:
                ptype, flags, off, vaddr, _paddr, filesz = struct.unpack_from(fmt, table, i * entsize)
            else:
                ptype, off, vaddr, _paddr, filesz, _memsz = struct.unpack_from(fmt, table, i * entsize)
                (flags,) = struct.unpack_from(self.order + "I", table, i * entsize + 24)
            if ptype == 1:  # PT_LOAD; Go: flags & (PF_X|PF_W) == PF_W is the data segment
                out.append(Segment(vaddr, off, filesz, data=flags & 3 == 2))
        return tuple(out)


# --- PE -----------------------------------------------------------------------------------------

_PE_DATA_RW = 0x00000040 | 0x40000000 | 0x80000000  # initialized data, read, write
_PE_ALIGN_32 = 0x00600000


def _pe(blob: Blob, hdr: bytes) -> Exe:
    if len(hdr) < 64:
        raise ExeError("truncated DOS header")
    (lfanew,) = struct.unpack_from("<I", hdr, 0x3C)
    coff = _read(blob, lfanew, 24)
    if coff[:4] != b"PE\0\0":
        raise ExeError("no PE signature")
    nsect, _ts, symtab, nsyms, opt_size = struct.unpack_from("<HIIIH", coff, 6)
    opt = _read(blob, lfanew + 24, opt_size) if opt_size else b""
    magic = struct.unpack_from("<H", opt, 0)[0] if len(opt) >= 2 else 0
    if magic == 0x20B and len(opt) >= 32:
        (image_base,) = struct.unpack_from("<Q", opt, 24)
    elif magic == 0x10B and len(opt) >= 32:
        (image_base,) = struct.unpack_from("<I", opt, 28)
    else:
        image_base = 0
    table = _read(blob, lfanew + 24 + opt_size, 40 * nsect)
    strtab_at = symtab + 18 * nsyms if symtab else 0
    sections: list[Section] = []
    segments: list[Segment] = []
    for i in range(nsect):
        raw_name, vsize, vaddr, raw_size, raw_ptr = struct.unpack_from("<8sIIII", table, 40 * i)
        (chars,) = struct.unpack_from("<I", table, 40 * i + 36)
        name = _cstr(raw_name)
        if name.startswith("/") and name[1:].isdigit() and strtab_at:
            # A long name: "/<offset>" into the COFF string table after the symbol table.
            at = strtab_at + int(name[1:])
            name = _cstr(blob.read_at(at, 256)) if at < blob.size else name
        size = min(raw_size, vsize) if vsize else raw_size
        if raw_ptr == 0:
            size = 0
        sections.append(Section(name, raw_ptr, size, image_base + vaddr))
        if size:
            data = vaddr != 0 and chars & ~_PE_ALIGN_32 == _PE_DATA_RW
            segments.append(Segment(image_base + vaddr, raw_ptr, size, data))
    return Exe("pe", blob, tuple(sections), tuple(segments), "<")


# --- Mach-O -------------------------------------------------------------------------------------


def _macho(blob: Blob, hdr: bytes) -> Exe:
    o = "<" if hdr[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe") else ">"
    is64 = hdr[:4] in (b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf")
    if len(hdr) < 32:
        raise ExeError("truncated Mach-O header")
    ncmds, sizeofcmds = struct.unpack_from(o + "II", hdr, 16)
    if sizeofcmds > _MAX_TABLE:
        raise ExeError("load commands too large")
    cmds = _read(blob, 32 if is64 else 28, sizeofcmds)
    if is64:  # LC_SEGMENT_64, segment_command_64 and section_64
        seg_cmd, seg_fmt, sect_fmt, seg_size, sect_size = 0x19, o + "16sQQQQiiII", o + "16s16sQQI", 72, 80
    else:  # LC_SEGMENT, segment_command and section
        seg_cmd, seg_fmt, sect_fmt, seg_size, sect_size = 0x1, o + "16sIIIIiiII", o + "16s16sIII", 56, 68
    sections: list[Section] = []
    segments: list[Segment] = []
    pos = 0
    for _ in range(min(ncmds, _MAX_SECTIONS)):
        if pos + 8 > len(cmds):
            raise ExeError("load command out of bounds")
        cmd, cmdsize = struct.unpack_from(o + "II", cmds, pos)
        if cmdsize < 8 or pos + cmdsize > len(cmds):
            raise ExeError("bad load command size")
        if cmd == seg_cmd and cmdsize >= seg_size:
            segname, vmaddr, _vmsize, fileoff, filesize, maxprot, initprot, nsects, _flags = struct.unpack_from(
                seg_fmt, cmds, pos + 8
            )
            seg = _cstr(segname)
            if filesize:
                rw = vmaddr != 0 and maxprot == 3 and initprot == 3
                segments.append(Segment(vmaddr, fileoff, filesize, rw))
            if seg_size + nsects * sect_size > cmdsize:
                raise ExeError("sections out of bounds")
            for k in range(nsects):
                at = pos + seg_size + k * sect_size
                sectname, segname2, addr, size, offset = struct.unpack_from(sect_fmt, cmds, at)
                (sflags,) = struct.unpack_from(o + "I", cmds, at + (64 if is64 else 56))
                zerofill = sflags & 0xFF in (1, 0x0C, 0x12)  # S_ZEROFILL, S_GB_ZEROFILL, S_THREAD_LOCAL_ZEROFILL
                name = f"{_cstr(segname2) or seg},{_cstr(sectname)}"
                sections.append(Section(name, offset, 0 if zerofill else size, addr))
        pos += cmdsize
    return Exe("macho", blob, tuple(sections), tuple(segments), o)


def _fat(blob: Blob, hdr: bytes) -> list[Exe]:
    (narch,) = struct.unpack_from(">I", hdr, 4)
    if narch == 0 or narch > _MAX_FAT_ARCHES:
        return []  # a Java class file (its version is where the count would be), or nothing usable
    is64 = hdr[:4] == b"\xca\xfe\xba\xbf"
    entry = 32 if is64 else 20
    table = _read(blob, 8, narch * entry)
    out: list[Exe] = []
    for i in range(narch):
        if is64:
            _cpu, _sub, offset, size = struct.unpack_from(">iiQQ", table, i * entry)
        else:
            _cpu, _sub, offset, size = struct.unpack_from(">iiII", table, i * entry)
        if offset + size > blob.size:
            raise ExeError("fat slice out of bounds")
        part = _Slice(blob, offset, size)
        head = part.read_at(0, 64)
        if head[:4] in MAGICS[2:6]:
            out.append(_macho(part, head))
    return out


def executables(blob: Blob) -> list[Exe]:
    """The executable images in a file: one for ELF and PE, one per slice of a fat Mach-O file, none
    for anything else. Raises :class:`ExeError` (or :class:`struct.error`) on a corrupt table."""
    hdr = blob.read_at(0, 64)
    magic = hdr[:4]
    if magic == b"\x7fELF":
        return [_ElfExe(blob, hdr)]
    if magic in MAGICS[2:6]:
        return [_macho(blob, hdr)]
    if magic in MAGICS[6:]:
        return _fat(blob, hdr)
    if hdr[:2] == b"MZ":
        return [_pe(blob, hdr)]
    return []
