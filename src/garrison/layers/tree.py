"""Walk a root filesystem on disk (``dir:`` sources) as if it were one layer.

Symlinks are reported, never followed, so a link pointing at ``/`` or at itself can neither escape the
root nor loop; files are opened with ``O_NOFOLLOW`` so a file swapped for a link while scanning is
refused rather than read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator

from garrison.layers.entry import Entry, EntryKind

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _reader(path: str) -> Callable[[int], bytes]:
    def read(limit: int) -> bytes:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        with os.fdopen(fd, "rb") as fp:
            return fp.read(limit)

    return read


def walk_tree(root: str, warnings: list[str], skip_dirs: frozenset[str] = frozenset()) -> Iterator[Entry]:
    """Entries below ``root`` (paths relative to it), directories before their contents.

    ``skip_dirs`` holds relative paths not to descend into (pseudo filesystems of a live host).
    """
    stack = [""]
    while stack:
        rel = stack.pop()
        full = os.path.join(root, rel) if rel else root
        try:
            it = os.scandir(full)
        except OSError as exc:
            warnings.append(f"dir:{root}: cannot list {rel or '.'}: {exc.strerror}")
            continue
        with it:
            for de in it:
                path = f"{rel}/{de.name}" if rel else de.name
                try:
                    st = de.stat(follow_symlinks=False)
                except OSError:
                    continue
                m = st.st_mode
                if stat.S_ISREG(m):
                    yield Entry(path, EntryKind.FILE, st.st_size, stat.S_IMODE(m), "", _reader(de.path))
                elif stat.S_ISDIR(m):
                    yield Entry(path, EntryKind.DIR, 0, stat.S_IMODE(m))
                    if path not in skip_dirs:
                        stack.append(path)
                elif stat.S_ISLNK(m):
                    try:
                        target = os.readlink(de.path)
                    except OSError:
                        target = ""
                    yield Entry(path, EntryKind.SYMLINK, 0, stat.S_IMODE(m), target)
                else:
                    yield Entry(path, EntryKind.OTHER, 0, stat.S_IMODE(m))
