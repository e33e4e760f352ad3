"""File events from fanotify (via ctypes): who opened for reading, or wrote, what attackers touch.

Many node attacks are a redirect inside a shell (``> ~/.bash_history``, ``echo x >> /etc/passwd``) that no
exec event shows, so the sensor marks the few files and directories that matter and reads the events:
``FAN_CLOSE_WRITE`` (opened for writing, now closed) and ``FAN_CLOSE_NOWRITE`` (opened for reading) with the
pid. A directory mark covers its direct children (``FAN_EVENT_ON_CHILD``). Each event carries an open
descriptor of the file: its path (``/proc/self/fd/N``) and size are read, then it is closed. A queue
overflow (``FAN_Q_OVERFLOW``) is counted as lost events.

Marks are by inode: a file replaced by rename (``useradd`` writes ``/etc/passwd+`` then renames it) is seen
through its directory's mark, which is why directories are marked for writes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
from collections.abc import Iterable

FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_CLASS_NOTIF = 0x0
FAN_MARK_ADD = 0x1
FAN_CLOSE_WRITE = 0x8
FAN_CLOSE_NOWRITE = 0x10
FAN_Q_OVERFLOW = 0x4000
FAN_EVENT_ON_CHILD = 0x08000000
FAN_NOFD = -1

_META = struct.Struct("=IBBHQii")

#: Watch modes: what a path is marked for.
MODES = {"r": FAN_CLOSE_NOWRITE, "w": FAN_CLOSE_WRITE, "rw": FAN_CLOSE_NOWRITE | FAN_CLOSE_WRITE}

#: ``(ts_ns, pid, mask, path, size)``; mask is the fanotify mask, size -1 when unknown.
FileRecord = tuple[int, int, int, str, int]


def _libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    lib.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
    lib.fanotify_init.restype = ctypes.c_int
    lib.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
    lib.fanotify_mark.restype = ctypes.c_int
    return lib


class FileWatch:
    """A fanotify group with marks on ``watches`` (``[path, mode]`` pairs, mode ``r``/``w``/``rw``).
    Paths that do not exist are skipped (:attr:`skipped`)."""

    def __init__(self, watches: Iterable[tuple[str, str]] | Iterable[list[str]]) -> None:
        self._lib = _libc()
        fd = self._lib.fanotify_init(
            FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, os.O_RDONLY | os.O_LARGEFILE | os.O_CLOEXEC
        )
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"fanotify_init: {os.strerror(err)}")
        self.fd: int = fd
        self.lost = 0
        self.marked: list[str] = []
        self.skipped: list[str] = []
        self._own = os.getpid()
        for path, mode in watches:
            self.add(path, mode)

    def add(self, path: str, mode: str) -> bool:
        """Mark one more path (a container's files through ``/proc/PID/root/…``); False when it cannot be."""
        mask = MODES[mode]
        if os.path.isdir(path):
            mask |= FAN_EVENT_ON_CHILD
        elif not os.path.exists(path):
            self.skipped.append(path)
            return False
        if self._lib.fanotify_mark(self.fd, FAN_MARK_ADD, mask, -100, os.fsencode(path)) < 0:
            self.skipped.append(path)
            return False
        self.marked.append(path)
        return True

    def read(self) -> list[FileRecord]:
        import time

        out: list[FileRecord] = []
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            if not buf:
                return out
            now = time.time_ns()
            off = 0
            while off + _META.size <= len(buf):
                length, _vers, _res, _mlen, mask, efd, pid = _META.unpack_from(buf, off)
                if length < _META.size:
                    break
                off += length
                if mask & FAN_Q_OVERFLOW:
                    self.lost += 1
                if efd == FAN_NOFD or efd < 0:
                    continue
                try:
                    if pid == self._own:
                        continue
                    try:
                        path = os.readlink(f"/proc/self/fd/{efd}")
                        size = os.fstat(efd).st_size
                    except OSError:
                        continue
                    out.append((now, pid, mask, path, size))
                finally:
                    os.close(efd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
