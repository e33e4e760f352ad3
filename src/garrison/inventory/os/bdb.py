"""Read the values of a Berkeley DB *hash* database file (rpm's ``Packages``) in pure Python.

Only what rpm uses: a hash database whose values are either stored on a hash page (``H_KEYDATA``)
or, being larger than a page allows, in a chain of overflow pages (``H_OFFPAGE``). Keys are ignored.
Page layout (``db_page.h``): a 26-byte header — lsn(8) pgno(4) prev(4) next(4) entries(2)
hf_offset(2) level(1) type(1) — then ``entries`` 16-bit item offsets. Items of a hash page alternate
key, value. The byte order follows the metadata page's magic.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

HASH_MAGIC = 0x061561
P_HASH_UNSORTED = 2
P_OVERFLOW = 7
P_HASHMETA = 8
P_HASH = 13
H_KEYDATA = 1
H_OFFPAGE = 3
PAGE_HEADER = 26
#: No sane rpmdb value is larger; also bounds the work a malicious chain can cause.
MAX_VALUE = 64 << 20


class BdbError(ValueError):
    """Not a Berkeley DB hash file, or a corrupt one."""


def _meta(content: bytes) -> tuple[str, int]:
    if len(content) < 512:
        raise BdbError("file too short for a Berkeley DB")
    for order in ("<", ">"):
        magic, _version, pagesize = struct.unpack_from(order + "III", content, 12)
        if magic == HASH_MAGIC:
            if pagesize < 512 or pagesize > 65536 or pagesize & (pagesize - 1):
                raise BdbError(f"bad page size {pagesize}")
            return order, pagesize
    raise BdbError("not a Berkeley DB hash database")


def _overflow(content: bytes, order: str, pagesize: int, pgno: int, total: int) -> bytes:
    """Follow an overflow chain from ``pgno``, collecting ``total`` bytes."""
    if total > MAX_VALUE:
        raise BdbError(f"overflow value of {total} bytes")
    out = bytearray()
    seen: set[int] = set()
    npages = len(content) // pagesize
    while pgno and len(out) < total:
        if pgno in seen or pgno >= npages:
            raise BdbError(f"bad overflow chain at page {pgno}")
        seen.add(pgno)
        base = pgno * pagesize
        next_pgno, _entries, used = struct.unpack_from(order + "IHH", content, base + 16)
        if content[base + 25] != P_OVERFLOW or used > pagesize - PAGE_HEADER:
            raise BdbError(f"page {pgno} is not an overflow page")
        out += content[base + PAGE_HEADER : base + PAGE_HEADER + used]
        pgno = next_pgno
    if len(out) < total:
        raise BdbError("overflow chain shorter than its value")
    return bytes(out[:total])


def hash_values(content: bytes) -> Iterator[bytes]:
    """Every value stored in a hash database, in page order."""
    order, pagesize = _meta(content)
    npages = len(content) // pagesize
    for pgno in range(1, npages):
        base = pgno * pagesize
        ptype = content[base + 25]
        if ptype not in (P_HASH, P_HASH_UNSORTED):
            continue
        (entries,) = struct.unpack_from(order + "H", content, base + 20)
        if entries * 2 > pagesize - PAGE_HEADER:
            raise BdbError(f"page {pgno}: too many entries")
        offsets = struct.unpack_from(f"{order}{entries}H", content, base + PAGE_HEADER)
        # Values are the odd items; an item runs to the start of the previous one (items are packed
        # downwards from the end of the page).
        for i in range(1, entries, 2):
            off = offsets[i]
            end = offsets[i - 1]
            if not (PAGE_HEADER <= off < end <= pagesize):
                raise BdbError(f"page {pgno}: bad item offset")
            item = base + off
            kind = content[item]
            if kind == H_KEYDATA:
                yield content[item + 1 : base + end]
            elif kind == H_OFFPAGE:
                ov_pgno, tlen = struct.unpack_from(order + "II", content, item + 4)
                yield _overflow(content, order, pagesize, ov_pgno, tlen)
