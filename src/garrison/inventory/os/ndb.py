"""Read header blobs from rpm's native ``ndb`` package database (``Packages.db``, used by SUSE).

Layout (rpm ``lib/backend/ndb/rpmpkg.c``, little-endian 32-bit words): a 32-byte file header
``"RpmP", version, generation, slot_pages, next_pkgidx``; the first ``slot_pages`` 4 KiB pages hold
16-byte slots ``"Slot", pkgidx, blkoff, blkcnt`` (offsets in 16-byte blocks); each slot points at a
blob ``"BlbS", pkgidx, generation, length`` followed by ``length`` bytes of header.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

DB_MAGIC = b"RpmP"
SLOT_MAGIC = b"Slot"
BLOB_MAGIC = b"BlbS"
HEADER_SIZE = 32
SLOT_SIZE = 16
BLOCK = 16
PAGE = 4096
MAX_SLOT_PAGES = 4096
MAX_BLOB = 64 << 20


class NdbError(ValueError):
    """Not an ndb package database, or a corrupt one."""


def blobs(content: bytes) -> Iterator[bytes]:
    if len(content) < HEADER_SIZE or content[:4] != DB_MAGIC:
        raise NdbError("not an ndb Packages.db")
    _version, _generation, slot_pages = struct.unpack_from("<III", content, 4)
    if not 0 < slot_pages <= MAX_SLOT_PAGES:
        raise NdbError(f"implausible slot page count {slot_pages}")
    slots_end = min(slot_pages * PAGE, len(content))
    for off in range(HEADER_SIZE, slots_end - SLOT_SIZE + 1, SLOT_SIZE):
        if content[off : off + 4] != SLOT_MAGIC:
            raise NdbError(f"bad slot at offset {off}")
        pkgidx, blkoff, blkcnt = struct.unpack_from("<III", content, off + 4)
        if pkgidx == 0:
            continue
        start = blkoff * BLOCK
        if start + 16 > len(content) or content[start : start + 4] != BLOB_MAGIC:
            raise NdbError(f"slot {pkgidx}: no blob at offset {start}")
        blob_idx, _gen, length = struct.unpack_from("<III", content, start + 4)
        if blob_idx != pkgidx or length > MAX_BLOB or length > blkcnt * BLOCK:
            raise NdbError(f"slot {pkgidx}: inconsistent blob header")
        if start + 16 + length > len(content):
            raise NdbError(f"slot {pkgidx}: blob truncated")
        yield content[start + 16 : start + 16 + length]
