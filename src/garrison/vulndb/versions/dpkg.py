"""Debian package versions (``[epoch:]upstream[-revision]``), ordered like ``dpkg --compare-versions``.

dpkg compares alternating non-digit and digit runs. In non-digit runs ``~`` sorts before
everything (even the end of the string), then the end, then letters, then all other characters;
digit runs compare as integers. The key below encodes exactly that as nested tuples so that
Python's tuple ordering reproduces dpkg's (checked against ``dpkg`` itself in the tests).
"""

from __future__ import annotations

import re

from garrison.vulndb.versions.base import InvalidVersion, KeyScheme, clean

_RUN = re.compile(r"(\D*)(\d*)")
_VALID = re.compile(r"^[A-Za-z0-9.+~:-]+$")

#: What an exhausted string compares as: an empty non-digit run and the number 0.
_END: tuple[tuple[int, ...], int] = ((0,), 0)


def _char_weight(c: str) -> int:
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


#: Weights of every character a valid version can hold in a non-digit run, precomputed: the key is
#: built for every fixed version of every advisory a package has, so this is the matcher's hot loop.
_WEIGHTS = {c: _char_weight(c) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.+~:-"}


def _part_key(part: str) -> tuple[tuple[tuple[int, ...], int], ...]:
    """Key of an upstream version or a revision.

    Each non-digit run ends with a 0 weight so that a shorter run sorts like dpkg's "end of string"
    (after ``~``, before anything else). Trailing runs equal to the end marker are dropped and one
    end marker is appended, so ``1.0`` and ``1.0-0``'s empty and ``0`` revisions compare equal.
    """
    w = _WEIGHTS
    runs: list[tuple[tuple[int, ...], int]] = [
        ((*[w.get(c) or _char_weight(c) for c in text], 0), int(digits) if digits else 0)
        for text, digits in _RUN.findall(part)
        if text or digits
    ]
    while runs and runs[-1] == _END:
        runs.pop()
    runs.append(_END)
    return tuple(runs)


def parse(version: str) -> tuple[int, str, str]:
    """Split into (epoch, upstream, revision); raises :class:`InvalidVersion`."""
    v = clean(version)
    if not _VALID.match(v):
        raise InvalidVersion(f"invalid dpkg version {version!r}")
    epoch = 0
    if ":" in v:
        e, v = v.split(":", 1)
        if not e.isdigit():
            raise InvalidVersion(f"invalid epoch in dpkg version {version!r}")
        epoch = int(e)
    upstream, _, revision = v.rpartition("-") if "-" in v else (v, "", "")
    if not upstream:
        raise InvalidVersion(f"empty upstream version in {version!r}")
    return epoch, upstream, revision


def key(version: str) -> tuple[int, object, object]:
    epoch, upstream, revision = parse(version)
    return (epoch, _part_key(upstream), _part_key(revision))


SCHEME = KeyScheme("dpkg", key)
