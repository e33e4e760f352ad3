"""What every version scheme offers: a total sort key and a three-way comparison.

Schemes are plain objects with a ``name`` and a ``key`` function; ``compare`` is derived from the
key so the two can never disagree.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

from garrison.errors import GarrisonError


class InvalidVersion(GarrisonError, ValueError):
    """A version string that the scheme cannot parse.

    Matching treats it as "cannot decide" (the range is skipped and noted) rather than a fatal
    error, which is why it is a ``ValueError`` as well as a :class:`GarrisonError`.
    """


class VersionScheme(Protocol):
    """One ecosystem's ordering of version strings."""

    name: str

    def key(self, version: str) -> Any:
        """A totally ordered sort key; raises :class:`InvalidVersion` when unparseable."""
        ...

    def compare(self, a: str, b: str) -> int:
        """-1, 0 or 1 as ``a`` sorts before, equal to or after ``b``."""
        ...


def sign(a: Any, b: Any) -> int:
    """Three-way comparison of two keys of the same scheme."""
    return int(a > b) - int(a < b)


class KeyScheme:
    """A scheme defined by a key function (the usual case: the key is a plain tuple)."""

    def __init__(self, name: str, key: Callable[[str], Any]) -> None:
        self.name = name
        self._key = key

    def key(self, version: str) -> Any:
        return self._key(version)

    def compare(self, a: str, b: str) -> int:
        return sign(self._key(a), self._key(b))

    def __repr__(self) -> str:
        return f"<VersionScheme {self.name}>"


class CmpScheme(KeyScheme):
    """A scheme whose rules are naturally a pairwise comparison (padding rules make a plain tuple
    key awkward, e.g. Maven and RubyGems): the key wraps the parsed form with ``cmp_to_key``."""

    def __init__(self, name: str, parse: Callable[[str], Any], cmp: Callable[[Any, Any], int]) -> None:
        wrap = functools.cmp_to_key(cmp)
        super().__init__(name, lambda v: wrap(parse(v)))
        self._parse = parse
        self._cmp = cmp

    def compare(self, a: str, b: str) -> int:
        return self._cmp(self._parse(a), self._parse(b))


def split_epoch_release(v: str, scheme: str, original: str, main: str = "version") -> tuple[int, str, str]:
    """``[epoch:]main[-release]`` as (epoch, main, release), the shape dpkg and rpm share (the last ``-``
    starts the release). Raises :class:`InvalidVersion` for a non-numeric epoch or an empty main part."""
    epoch = 0
    if ":" in v:
        e, v = v.split(":", 1)
        if not e.isdigit():
            raise InvalidVersion(f"invalid epoch in {scheme} version {original!r}")
        epoch = int(e)
    head, _, release = v.rpartition("-") if "-" in v else (v, "", "")
    if not head:
        raise InvalidVersion(f"empty {main} in {original!r}")
    return epoch, head, release


def clean(version: str) -> str:
    """Strip surrounding whitespace and reject the empty string (every scheme needs a value)."""
    v = version.strip()
    if not v:
        raise InvalidVersion("empty version")
    return v
