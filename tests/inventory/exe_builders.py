"""Executables for tests: real build data (a Go build-info section, a cargo-auditable section) inside
PE, Mach-O and ELF containers.

This machine has no Go toolchain and no Windows or macOS targets for rustc, so:

* the build data is real: the Go build info is the ``.go.buildinfo`` section of a real Go binary,
  cut out with ``objcopy -O binary --only-section``; the cargo-auditable section is zlib-compressed
  JSON in cargo-auditable's schema, added to a real ``rustc`` binary with ``objcopy`` (as its linker
  step does);
* PE files come two ways: ``objcopy -O pei-x86-64`` of a real ELF (so section names longer than
  eight bytes go through the COFF string table), and :func:`pe64`, which lays the file out as the Go
  linker does (the build info at the start of ``.data``, no section of its own);
* Mach-O files are laid out here byte by byte (:func:`macho64`, :func:`fat`), following
  ``<mach-o/loader.h>`` and ``<mach-o/fat.h>``: the Go linker's ``__DATA,__go_buildinfo`` section,
  cargo-auditable's ``__DATA,.dep-v0``.

The benchmark feeds the same files to Trivy and Syft, whose Go parsers (``debug/pe``,
``debug/macho``) are strict about these layouts.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

#: Real Go binaries that may be on this machine (the benchmark's reference tools are Go programs).
ROOT = Path(__file__).resolve().parents[2]
GO_BINARIES = (
    ROOT / "bench/.tools/venv/bin/trivy",
    Path("/usr/lib/google-cloud-sdk/bin/kubectl"),
    Path("/usr/bin/skopeo"),
)


def real_go_binary() -> Path | None:
    for p in GO_BINARIES:
        if p.exists() and p.stat().st_size > 4096 and p.read_bytes()[:4] == b"\x7fELF":
            return p
    return None


def objcopy() -> str | None:
    return shutil.which("objcopy")


def section_bytes(binary: Path, name: str, dest: Path) -> bytes:
    """The raw content of one section of a real ELF file, extracted by ``objcopy``."""
    tool = objcopy()
    assert tool is not None
    subprocess.run(
        [tool, "-O", "binary", f"--only-section={name}", str(binary), str(dest)], check=True, capture_output=True
    )
    return dest.read_bytes()


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


# --- PE32+ -----------------------------------------------------------------------------------------

IMAGE_SCN_CODE = 0x60000020  # code, execute, read
IMAGE_SCN_DATA_RW = 0xC0000040  # initialized data, read, write
IMAGE_SCN_DATA_RO = 0x40000040  # initialized data, read


def pe64(sections: list[tuple[str, bytes, int]]) -> bytes:
    """A PE32+ (x86-64) image: DOS stub header, COFF header, optional header with 16 data directories,
    and the sections ``(name ≤ 8 bytes, content, characteristics)`` at 0x200-aligned file offsets and
    0x1000-aligned virtual addresses."""
    file_align, sect_align, image_base = 0x200, 0x1000, 0x140000000
    nsect = len(sections)
    opt_size = 112 + 16 * 8
    headers = 0x40 + 4 + 20 + opt_size + 40 * nsect
    size_of_headers = _align(headers, file_align)
    table = b""
    body = b""
    raw_at = size_of_headers
    va = sect_align
    for name, data, chars in sections:
        assert len(name) <= 8
        raw_size = _align(len(data), file_align)
        table += struct.pack("<8sIIIIIIHHI", name.encode(), len(data), va, raw_size, raw_at, 0, 0, 0, 0, chars)
        body += data + bytes(raw_size - len(data))
        raw_at += raw_size
        va += _align(max(len(data), 1), sect_align)
    size_of_image = va
    dos = bytearray(0x40)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 0x40)
    coff = b"PE\0\0" + struct.pack("<HHIIIHH", 0x8664, nsect, 0, 0, 0, opt_size, 0x0022)
    opt = struct.pack(
        "<HBBIIIIIQIIHHHHHHIIIIHHQQQQII",
        0x20B,  # PE32+
        14,
        0,
        0,  # size of code
        0,  # size of initialized data
        0,
        sect_align,  # entry point (inside the first section)
        sect_align,  # base of code
        image_base,
        sect_align,
        file_align,
        6,
        0,
        0,
        0,
        6,
        0,
        0,
        size_of_image,
        size_of_headers,
        0,
        3,  # console subsystem
        0x8160,
        0x100000,
        0x1000,
        0x100000,
        0x1000,
        0,
        16,
    ) + bytes(16 * 8)
    assert len(opt) == opt_size
    head = bytes(dos) + coff + opt + table
    return head + bytes(size_of_headers - len(head)) + body


# --- Mach-O ----------------------------------------------------------------------------------------

MH_MAGIC_64 = 0xFEEDFACF
CPU_TYPE_X86_64 = 0x01000007
CPU_TYPE_ARM64 = 0x0100000C
LC_SEGMENT_64 = 0x19
LC_SYMTAB = 0x2
VM_PROT_RX, VM_PROT_RW = 5, 3


def macho64(segments: list[tuple[str, int, list[tuple[str, bytes]]]], cputype: int = CPU_TYPE_X86_64) -> bytes:
    """A 64-bit Mach-O executable: one ``LC_SEGMENT_64`` per ``(segment name, protection,
    [(section name, content)])``, each segment's sections packed from a page-aligned file offset, and
    an empty ``LC_SYMTAB``."""
    page = 0x1000
    ncmds = len(segments) + 1  # + an empty LC_SYMTAB, as linkers always write one
    sizeofcmds = sum(72 + 80 * len(secs) for _, _, secs in segments) + 24
    cmds = b""
    body = b""
    file_at = _align(32 + sizeofcmds, page)
    vmaddr = 0x100000000
    for segname, prot, secs in segments:
        seg_off = file_at
        sect_hdrs = b""
        data = b""
        for sectname, content in secs:
            off = seg_off + len(data)
            sect_hdrs += struct.pack(
                "<16s16sQQIIIIIIII",
                sectname.encode(),
                segname.encode(),
                vmaddr + len(data),
                len(content),
                off,
                4,
                0,
                0,
                0,
                0,
                0,
                0,
            )
            data += content + bytes(-len(content) % 16)
        filesize = _align(len(data), page)
        cmds += struct.pack(
            "<II16sQQQQiiII",
            LC_SEGMENT_64,
            72 + 80 * len(secs),
            segname.encode(),
            vmaddr,
            filesize,
            seg_off,
            filesize,
            prot,
            prot,
            len(secs),
            0,
        )
        cmds += sect_hdrs
        body += data + bytes(filesize - len(data))
        file_at += filesize
        vmaddr += filesize
    cmds += struct.pack("<IIIIII", LC_SYMTAB, 24, file_at, 0, file_at, 0)
    header = struct.pack("<IiiIIIII", MH_MAGIC_64, cputype, 3, 2, ncmds, sizeofcmds, 0, 0)
    head = header + cmds
    return head + bytes(_align(len(head), page) - len(head)) + body


def fat(slices: list[tuple[int, bytes]]) -> bytes:
    """A universal binary (``FAT_MAGIC``, big-endian table) of ``(cputype, Mach-O image)`` slices."""
    align = 1 << 14
    table = struct.pack(">II", 0xCAFEBABE, len(slices))
    at = _align(8 + 20 * len(slices), align)
    body = b""
    for cputype, image in slices:
        table += struct.pack(">iiIII", cputype, 3, at, len(image), 14)
        pad = bytes(_align(len(image), align) - len(image))
        body += image + pad
        at += len(image) + len(pad)
    return table + bytes(_align(len(table), align) - len(table)) + body


# --- ELF with a hole -------------------------------------------------------------------------------


def write_sparse_elf(dest: Path, buildinfo: bytes, size: int) -> None:
    """An ELF64 file of ``size`` bytes, mostly a hole: the header and one program header, ``.go.buildinfo``
    at 4 KiB, and the section name table and section header table at the very end (where linkers put
    them)."""
    names = b"\0.go.buildinfo\0.shstrtab\0"
    tail = len(names) + 3 * 64
    strtab_at = size - tail
    shoff = strtab_at + len(names)
    ehdr = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    ehdr += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x401000, 64, shoff, 0, 64, 56, 1, 64, 3, 2)
    # One PT_LOAD (read-write) mapping the build info, as Go's debug/buildinfo reads through segments.
    ehdr += struct.pack("<IIQQQQQQ", 1, 6, 4096, 0x500000, 0x500000, len(buildinfo), len(buildinfo), 0x1000)
    null = bytes(64)
    bi = struct.pack("<IIQQQQIIQQ", 1, 1, 3, 0x500000, 4096, len(buildinfo), 0, 0, 16, 0)
    st = struct.pack("<IIQQQQIIQQ", 15, 3, 0, 0, strtab_at, len(names), 0, 0, 1, 0)
    with open(dest, "wb") as fp:
        fp.write(ehdr)
        fp.seek(4096)
        fp.write(buildinfo)
        fp.seek(strtab_at)
        fp.write(names + null + bi + st)
    dest.chmod(0o755)


# --- Go build info ---------------------------------------------------------------------------------

GO_MAGIC = b"\xff Go buildinf:"
SENTINEL_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
SENTINEL_END = bytes.fromhex("f932433186182072008242104116d8f2")


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def go_buildinfo(go_version: str, modinfo: str) -> bytes:
    """A Go ≥ 1.18 build-info blob as ``cmd/link`` writes it: magic, pointer size 8, flags 2 (inline
    strings, little-endian), padding to 32 bytes, then the version and the framed module info."""
    mod = SENTINEL_START + modinfo.encode() + SENTINEL_END
    head = GO_MAGIC + bytes([8, 2]) + bytes(16)
    return head + _uvarint(len(go_version)) + go_version.encode() + _uvarint(len(mod)) + mod
