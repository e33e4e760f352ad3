"""A lean streaming tar walker.

Python's :mod:`tarfile` in stream mode builds a ``TarInfo`` object per member, copies skipped content
through a buffer and roughly doubles the cost of reading a layer. This walker parses the 512-byte
headers itself (ustar, GNU ``L``/``K`` long names, PAX ``x``/``g`` records for path, linkpath and size),
skips unwanted content by moving an offset inside the current decompressed chunk (no copy) and
yields :class:`~garrison.layers.entry.Entry` objects with normalized paths and whiteouts decoded.

Nothing is ever written to disk; a member name that escapes the root (``..``) is skipped with a
warning rather than trusted, because the inventory keys results by path.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from garrison.errors import BadImageError, LimitExceededError
from garrison.layers.decompress import ChunkStream
from garrison.layers.entry import Entry, EntryKind

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
#: Cap on the content of metadata members (long names, PAX records): real ones are tiny.
MAX_META_BYTES = 1024 * 1024
_WH = ".wh."
_OPQ = ".wh..wh..opq"

# typeflag → kind; regular files and unknown types carry content, the others do not (as tarfile).
_KINDS: dict[bytes, EntryKind] = {
    b"0": EntryKind.FILE,
    b"\x00": EntryKind.FILE,
    b"7": EntryKind.FILE,
    b"1": EntryKind.HARDLINK,
    b"2": EntryKind.SYMLINK,
    b"5": EntryKind.DIR,
    b"3": EntryKind.OTHER,
    b"4": EntryKind.OTHER,
    b"6": EntryKind.OTHER,
}
_NO_CONTENT = frozenset((b"1", b"2", b"3", b"4", b"5", b"6"))
#: Long-name, long-link and PAX members: metadata for the next header, never entries themselves.
_META = frozenset((b"L", b"K", b"x", b"g"))
_USTAR = b"ustar\x00"
_GNU_MAGIC = b"ustar "
#: The header fields the walker reads, in one unpack: name, mode, size, typeflag, linkname, magic,
#: prefix (uid/gid, mtime, checksum, version, owner names and device numbers are skipped).
_HEADER = struct.Struct("100s8s16x12s20x1s100s6s82x155s12x")
assert _HEADER.size == BLOCK
#: Raw mode field → value: a layer has a handful of distinct modes, so parsing each once is enough.
_MODES: dict[bytes, int] = {}
_MODES_MAX = 4096


def normalize_path(name: str) -> str | None:
    """Relative, ``/``-separated, without ``.`` parts; ``None`` when the name climbs out with ``..``."""
    if name.startswith(("/", ".")) or "//" in name or "/." in name:
        parts = [p for p in name.split("/") if p and p != "."]
        if ".." in parts:
            return None
        return "/".join(parts)
    # No "//" in the name, so a directory's single trailing "/" is all there is to drop.
    return name[:-1] if name.endswith("/") else name


def _num(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 when the high bit of the first byte is set."""
    if field and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:  # negative base-256: never valid for sizes
            raise ValueError("negative number")
        return value
    text = field.split(b"\x00", 1)[0].strip()
    return int(text, 8) if text else 0


def _cstr(field: bytes) -> str:
    return field.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape")


def _checksum_ok(hdr: bytes) -> bool:
    try:
        stored = _num(hdr[148:156])
    except ValueError:
        return False
    total = sum(hdr[:148]) + 256 + sum(hdr[156:])  # the checksum field counts as eight spaces
    return stored == total


def parse_pax(data: bytes) -> dict[str, str]:
    """PAX extended header records: ``"<len> <key>=<value>\\n"`` repeated."""
    out: dict[str, str] = {}
    pos = 0
    n = len(data)
    while pos < n:
        if data[pos] == 0:
            break
        sp = data.find(b" ", pos)
        if sp < 0:
            raise ValueError("bad PAX record")
        length = int(data[pos:sp])
        if length <= 0 or pos + length > n:
            raise ValueError("bad PAX record length")
        record = data[sp + 1 : pos + length - 1]
        key, eq, value = record.partition(b"=")
        if not eq:
            raise ValueError("bad PAX record")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


class TarWalker:
    """Walks one layer's tar stream once. Iterate it, then call :meth:`finish` for the diff_id.

    ``Entry.read`` of a FILE entry reads the next bytes of that member's content; whatever is not read
    is skipped when the iteration moves on.
    """

    def __init__(self, chunks: ChunkStream, name: str = "layer") -> None:
        self._cs = chunks
        self._name = name
        self._buf = b""
        self._pos = 0
        self._remaining = 0
        self._pad = 0
        self.warnings: list[str] = []
        self._global: dict[str, str] = {}

    # -- raw byte access -------------------------------------------------------------------------
    def _truncated(self) -> BadImageError:
        return BadImageError(f"{self._name}: truncated tar stream (the layer ends inside a member)")

    def _take(self, n: int, eof_ok: bool = False) -> bytes:
        """Exactly ``n`` bytes; ``b""`` at a clean end of stream when ``eof_ok``."""
        buf, pos = self._buf, self._pos
        end = pos + n
        if end <= len(buf):
            self._pos = end
            return buf[pos:end]
        parts = [buf[pos:]] if pos < len(buf) else []
        got = len(buf) - pos if pos < len(buf) else 0
        while got < n:
            c = self._cs.next_chunk()
            if not c:
                if got == 0 and eof_ok:
                    self._buf, self._pos = b"", 0
                    return b""
                raise self._truncated()
            need = n - got
            if len(c) >= need:
                parts.append(c[:need])
                self._buf, self._pos = c, need
                got = n
            else:
                parts.append(c)
                got += len(c)
        return b"".join(parts)

    def _skip(self, n: int) -> None:
        avail = len(self._buf) - self._pos
        if n <= avail:
            self._pos += n
            return
        n -= avail
        while True:
            c = self._cs.next_chunk()
            if not c:
                raise self._truncated()
            if n <= len(c):
                self._buf, self._pos = c, n
                return
            n -= len(c)

    def read_current(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of the current member's remaining content."""
        n = min(limit, self._remaining)
        if n <= 0:
            return b""
        data = self._take(n)
        self._remaining -= n
        return data

    def _meta_content(self, size: int, what: str) -> bytes:
        if size > MAX_META_BYTES:
            raise LimitExceededError(f"{self._name}: {what} of {size} bytes exceeds {MAX_META_BYTES}")
        data = self._take(size)
        self._skip(-size % BLOCK)
        return data

    # -- iteration -------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Entry]:
        # The hot loop: one struct unpack per header straight out of the current chunk, octal fields
        # parsed with one ``int()`` (the general parser only when that fails), the link name decoded
        # only for links, and the common entry kinds built inline.
        long_name: str | None = None
        long_link: str | None = None
        pax: dict[str, str] = {}
        read = self.read_current
        unpack = _HEADER.unpack_from
        kinds = _KINDS
        modes = _MODES
        no_content = _NO_CONTENT
        FILE, DIR = EntryKind.FILE, EntryKind.DIR
        while True:
            skip = self._remaining + self._pad
            if skip:
                self._remaining = self._pad = 0
                end = self._pos + skip
                if end <= len(self._buf):
                    self._pos = end
                else:
                    self._skip(skip)
            buf, pos = self._buf, self._pos
            if pos + BLOCK <= len(buf):
                self._pos = pos + BLOCK
            else:
                buf = self._take(BLOCK, eof_ok=True)
                pos = 0
                if not buf:
                    if self._cs.total == 0:
                        raise BadImageError(f"{self._name}: empty layer (not even an end-of-archive marker)")
                    return
            name_f, mode_f, size_f, flag, link_f, magic, prefix_f = unpack(buf, pos)
            if not name_f[0] and buf[pos : pos + BLOCK] == _ZERO_BLOCK:
                return
            if magic != _USTAR and magic != _GNU_MAGIC and not _checksum_ok(buf[pos : pos + BLOCK]):
                raise BadImageError(f"{self._name}: not a tar stream (bad header checksum)")
            try:
                try:
                    size = int(size_f.rstrip(b"\x00"), 8)
                except ValueError:
                    size = _num(size_f)
                mode = modes.get(mode_f)
                if mode is None:
                    mode = _num(mode_f)
                    if len(modes) < _MODES_MAX:
                        modes[mode_f] = mode
            except ValueError:
                raise BadImageError(f"{self._name}: corrupt tar header") from None
            if flag in _META:
                data = self._meta_content(size, "tar metadata member")
                if flag == b"L":
                    long_name = _cstr(data)
                elif flag == b"K":
                    long_link = _cstr(data)
                else:
                    try:
                        records = parse_pax(data)
                    except ValueError:
                        raise BadImageError(f"{self._name}: corrupt PAX header") from None
                    if flag == b"x":
                        pax.update(records)
                    else:
                        self._global.update(records)
                continue
            if self._global:
                pax = {**self._global, **pax}
            if pax and "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise BadImageError(f"{self._name}: corrupt PAX size") from None
            if size < 0:
                raise BadImageError(f"{self._name}: negative member size")
            if flag not in no_content:
                self._remaining = size
                self._pad = -size % BLOCK
            if pax:
                name = pax.get("path") or long_name
                link = pax.get("linkpath") or long_link
                pax = {}
            else:
                name, link = long_name, long_link
            long_name = long_link = None
            if name is None:
                name = name_f.partition(b"\x00")[0].decode("utf-8", "surrogateescape")
                if prefix_f[0] and magic == _USTAR:
                    name = _cstr(prefix_f) + "/" + name
            kind = kinds.get(flag)
            if kind is FILE or kind is DIR:
                # Fast path for the bulk of a layer: plain files and directories.
                path = normalize_path(name)
                if path and _WH not in path:
                    if kind is FILE:
                        yield Entry(path, FILE, size, mode, "", read)
                    else:
                        yield Entry(path, DIR, 0, mode)
                    continue
            if link is None:
                link = _cstr(link_f) if kind is EntryKind.HARDLINK or kind is EntryKind.SYMLINK else ""
            entry = self._entry(name, flag, size, mode, link)
            if entry is not None:
                if entry.kind is FILE:
                    entry.read = read
                yield entry

    def _entry(self, raw_name: str, flag: bytes, size: int, mode: int, link: str) -> Entry | None:
        path = normalize_path(raw_name)
        if path is None:
            self.warnings.append(f"{self._name}: skipped member escaping the image root: {raw_name!r}")
            return None
        if not path:
            return None
        if _WH in path:
            head, _, base = path.rpartition("/")
            if base == _OPQ:
                return Entry(head, EntryKind.OPAQUE)
            if base.startswith(_WH):
                if base.startswith(".wh..wh."):
                    return None  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs)
                hidden = base[len(_WH) :]
                if not hidden or hidden in (".", ".."):
                    self.warnings.append(f"{self._name}: skipped invalid whiteout {raw_name!r}")
                    return None
                return Entry(f"{head}/{hidden}" if head else hidden, EntryKind.WHITEOUT)
        kind = _KINDS.get(flag, EntryKind.OTHER)
        if kind is EntryKind.HARDLINK:
            target = normalize_path(link)
            if not target:
                self.warnings.append(f"{self._name}: skipped hardlink {path!r} escaping the image root: {link!r}")
                return None
            return Entry(path, kind, 0, mode, target)
        if kind is EntryKind.FILE:
            return Entry(path, kind, size, mode)
        if kind is EntryKind.SYMLINK:
            return Entry(path, kind, 0, mode, link)
        return Entry(path, kind, 0, mode)

    def finish(self) -> str:
        """Drain the stream (so every byte is hashed and the blob digest checked); the diff_id."""
        self._remaining = self._pad = 0
        self._buf, self._pos = b"", 0
        self._cs.drain()
        return self._cs.diff_id
