"""Go modules compiled into a binary, from the build info the Go linker embeds.

The build info starts with the 14-byte magic ``\\xff Go buildinf:``, then a pointer size byte and a
flags byte, padded to 32 bytes:

* Go ≥ 1.18 (flags & 2): the Go version and the module info follow inline as two uvarint-length
  strings.
* older: two pointers (at 16 and 16+ptrsize) to Go string headers (data pointer, length) in the
  binary's virtual address space; resolving them needs the loaded segments.

It is looked for where Go's ``debug/buildinfo`` looks, in ELF, PE and Mach-O files alike (see
:mod:`.exe`): the section the linker gives it, else the first writable data segment. Only headers,
tables and that region are read, through ``FileInput.read_at``.

The module info is text framed by 16-byte sentinels: ``path``, ``mod`` (main module), ``dep``
lines, and ``=>`` lines that replace the preceding ``dep``. The toolchain version is reported as the
``stdlib`` module so that standard-library advisories match.
"""

from __future__ import annotations

import re
import struct

from garrison.inventory import purl
from garrison.inventory.base import AnalysisResult, FileInput, MiB
from garrison.inventory.lang.exe import MAGICS, Blob, Exe, ExeError, executables
from garrison.inventory.lang.spec import BinaryAnalyzer
from garrison.model import Package, PackageType

MAGIC = b"\xff Go buildinf:"
#: Smallest Go binary worth opening (a static hello world is over 1 MiB; stay well below).
MIN_SIZE = 4096


class BuildInfoError(ValueError):
    """The build info is present but cannot be decoded."""


#: The search for the magic reads this much at a time (with an overlap), never a whole binary.
_CHUNK = 1024 * 1024
#: Longest version or module-info string accepted.
_MAX_STRING = 16 * MiB


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


def _inline_string(exe: Exe, pos: int) -> tuple[bytes, int]:
    """A uvarint length and that many bytes at file offset ``pos``; (the string, the offset after it)."""
    head = exe.blob.read_at(pos, 10)
    n, used = _uvarint(head, 0)
    if n > _MAX_STRING or pos + used + n > exe.blob.size:
        raise BuildInfoError("string runs past end of file")
    return exe.read(pos + used, n), pos + used + n


def _pointer_strings(exe: Exe, at: int, ptr_size: int) -> tuple[bytes, bytes]:
    """Pre-1.18 format: follow the two pointers to Go string headers."""
    if ptr_size not in (4, 8):
        raise BuildInfoError(f"bad pointer size {ptr_size}")
    fmt = exe.order + ("Q" if ptr_size == 8 else "I")
    out: list[bytes] = []
    for k in range(2):
        (str_hdr,) = struct.unpack(fmt, exe.read(at + 16 + k * ptr_size, ptr_size))
        hdr = exe.read_va(str_hdr, 2 * ptr_size)
        (ptr,) = struct.unpack_from(fmt, hdr, 0)
        (length,) = struct.unpack_from(fmt, hdr, ptr_size)
        if length > _MAX_STRING:
            raise BuildInfoError("implausible string length")
        out.append(exe.read_va(ptr, length) if length else b"")
    return out[0], out[1]


_NAMED = {"elf": ".go.buildinfo", "pe": ".go.buildinfo", "macho": "__DATA,__go_buildinfo"}


def _search_range(exe: Exe) -> tuple[int, int] | None:
    """(file offset, size) where Go's ``debug/buildinfo`` looks for the build info: the section the
    linker gives it, else the first writable data segment (PE's ``.data``, a section-stripped ELF),
    else the whole file. None for an ELF file whose section table has no such section: not Go."""
    named = exe.section(_NAMED[exe.format])
    if named is not None:
        return named.offset, named.size
    if exe.format == "elf" and exe.has_section_table:
        return None
    for seg in exe.segments:
        if seg.data:
            return seg.offset, seg.size
    return 0, exe.blob.size  # no data segment either: the whole file, chunk by chunk


def _find_magic(exe: Exe, start: int, size: int) -> int:
    """File offset of the first build-info magic in ``[start, start + size)``, read chunk by chunk."""
    end = min(start + size, exe.blob.size)
    pos = start
    overlap = len(MAGIC) - 1
    while pos < end:
        chunk = exe.blob.read_at(pos, min(_CHUNK, end - pos))
        if not chunk:
            break
        i = chunk.find(MAGIC)
        if i >= 0:
            return pos + i
        if pos + len(chunk) >= end:
            break
        pos += max(1, len(chunk) - overlap)
    return -1


def _build_info(exe: Exe) -> tuple[str, str] | None:
    where = _search_range(exe)
    if where is None:
        return None
    start, size = where
    while size > 0:
        pos = _find_magic(exe, start, size)
        if pos < 0:
            return None
        head = exe.blob.read_at(pos, 32)
        if len(head) == 32:
            ptr_size, flags = head[14], head[15]
            if flags & 2:
                version, nxt = _inline_string(exe, pos + 32)
                modinfo, _ = _inline_string(exe, nxt)
            else:
                version, modinfo = _pointer_strings(exe, pos, ptr_size)
            if version.startswith((b"go", b"devel")):
                return version.decode("utf-8", "replace"), _strip_sentinels(modinfo).decode("utf-8", "replace")
        size -= pos + 1 - start
        start = pos + 1
    return None


def read_build_info(blob: Blob) -> tuple[str, str] | None:
    """(Go version, module info text) of an executable, or None when it has no Go build info. Only
    headers, tables and the build-info region are read."""
    try:
        exes = executables(blob)
    except ExeError as exc:
        raise BuildInfoError(str(exc)) from exc
    for exe in exes:
        try:
            info = _build_info(exe)
        except ExeError as exc:
            raise BuildInfoError(str(exc)) from exc
        if info is not None:
            return info
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


_SEMVER = re.compile(r"^v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?$")
_LDFLAG_X = re.compile(r"""-X[= ]?['"]?([^=\s'"]+)=([^\s'"]+)""")


def ldflags_version(ldflags: str) -> str:
    """The version a build stamped with ``-ldflags "-X main.version=1.2.3"`` (as Trivy reads it): the
    first ``-X`` whose variable ends in ``.version`` or ``.ver`` and whose value is a semantic version."""
    for key, value in _LDFLAG_X.findall(ldflags):
        if key.lower().endswith((".version", ".ver")) and _SEMVER.match(value):
            return str(value)
    return ""


def parse_modinfo(go_version: str, modinfo: str, location: str) -> list[Package]:
    """Main module, dependencies (after ``=>`` replacements) and ``stdlib`` at the toolchain version.

    The main module of a ``(devel)`` build takes its version from the ``-ldflags -X`` stamp when there
    is one, and is reported without a version otherwise (as Trivy and Syft do)."""
    main: tuple[str, str] | None = None
    ldflags = ""
    deps: list[tuple[str, str]] = []
    for line in modinfo.splitlines():
        parts = line.split("\t")
        kind = parts[0]
        if kind == "mod" and len(parts) >= 3:
            main = (parts[1], parts[2])
        elif kind == "dep" and len(parts) >= 3:
            deps.append((parts[1], parts[2]))
        elif kind == "=>" and len(parts) >= 3 and deps:
            deps[-1] = (parts[1], parts[2])
        elif kind == "build" and len(parts) >= 2 and parts[1].startswith("-ldflags="):
            ldflags = parts[1][len("-ldflags=") :]
    packages: list[Package] = []
    if main is not None:
        path, version = main
        if version in ("(devel)", "") and ldflags:
            version = ldflags_version(ldflags) or version
        packages.append(_module(path, version, location))
    packages.extend(_module(p, v, location) for p, v in deps)
    # "go1.21.5" or "go1.22.0 X:boringcrypto" → v1.21.5; devel toolchains have no usable version.
    toolchain = go_version.split()[0] if go_version else ""
    if toolchain.startswith("go") and toolchain[2:3].isdigit():
        packages.append(_module("stdlib", "v" + toolchain[2:], location))
    return packages


def analyze_binary(file: FileInput) -> AnalysisResult:
    if not file.read_at(0, 4).startswith(MAGICS):
        return AnalysisResult()
    try:
        info = read_build_info(file)
    except (BuildInfoError, struct.error) as exc:
        return AnalysisResult(warnings=(f"{file.path}: unreadable Go build info: {exc}",))
    if info is None:
        return AnalysisResult()
    return AnalysisResult(packages=tuple(parse_modinfo(info[0], info[1], file.path)))


#: Executable files over :data:`MIN_SIZE` bytes; the content check happens in ``analyze_binary``.
ANALYZER = BinaryAnalyzer("go-binary", 2, analyze_binary, min_size=MIN_SIZE)
