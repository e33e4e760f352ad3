"""One entry of a layer, as the walker yields it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class EntryKind(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    #: ``.wh.NAME``: ``path`` is the hidden NAME (full path), not the marker.
    WHITEOUT = "whiteout"
    #: ``.wh..wh..opq``: ``path`` is the directory whose lower contents are hidden.
    OPAQUE = "opaque"
    OTHER = "other"


@dataclass(slots=True)
class Entry:
    """A member of a layer. ``path`` is normalized: relative, ``/``-separated, no ``.``/``..`` parts."""

    path: str
    kind: EntryKind
    size: int = 0
    mode: int = 0
    #: Symlink target as stored, or the normalized path a hardlink points at.
    linkname: str = ""
    #: Reads up to ``limit`` bytes of a FILE's content; valid only until the walker moves on.
    read: Callable[[int], bytes] | None = None
