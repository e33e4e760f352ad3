"""Random-access readers for analyzers that declare ``random_access`` (the binary analyzers).

A layer is a tar stream that can only be read forward, but an ELF file keeps its section table at the
end and the section it describes in the middle. Rather than holding a whole executable in memory,
the walker copies a large member to an anonymous temporary file in 1 MiB chunks (:func:`spool`) and
the parser reads headers, tables and one section with ``pread``. A file of a ``dir:`` tree is read in
place (:func:`open_file`); a small member is simply read into memory (:class:`BytesReader`).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from typing import Any

#: Members up to this size are read into memory: spooling costs a write and a read of each byte.
SPOOL_ABOVE = 8 * 1024 * 1024
#: Copy size when spooling.
CHUNK = 1024 * 1024

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class FdReader:
    """Random access over an open file descriptor (``os.pread``); :meth:`close` closes it."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def read_at(self, offset: int, n: int) -> bytes:
        if n <= 0:
            return b""
        return os.pread(self.fd, n, offset)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def spool(read: Callable[[int], bytes], size: int, head: bytes = b"") -> FdReader:
    """Write ``head`` and then the next ``size`` bytes of a forward-only stream (a tar member's
    ``read``) to an anonymous temporary file, one chunk at a time; a reader over the whole."""
    fd, name = tempfile.mkstemp(prefix="garrison-spool-")
    try:
        os.unlink(name)  # anonymous: gone when closed, whatever happens to this process
        _write_all(fd, head)
        left = size
        while left > 0:
            chunk = read(min(CHUNK, left))
            if not chunk:
                break
            _write_all(fd, chunk)
            left -= len(chunk)
    except BaseException:
        os.close(fd)
        raise
    return FdReader(fd)


def open_file(path: str) -> FdReader:
    """A reader over a file on disk, opened without following a final symlink."""
    return FdReader(os.open(path, os.O_RDONLY | _NOFOLLOW))


class ReaderIO(io.RawIOBase):
    """A seekable, read-only binary file over ``read_at`` (for :mod:`zipfile`, which seeks to the
    central directory at the end and then to each member it opens)."""

    def __init__(self, read_at: Callable[[int, int], bytes], size: int) -> None:
        super().__init__()
        self._read_at = read_at
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, b: Any) -> int:
        n = min(len(b), self._size - self._pos)
        if n <= 0:
            return 0
        data = self._read_at(self._pos, n)
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)
