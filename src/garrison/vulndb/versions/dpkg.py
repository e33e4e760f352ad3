"""Debian package versions (``[epoch:]upstream[-revision]``), ordered like ``dpkg --compare-versions``.

dpkg compares alternating non-digit and digit runs. In non-digit runs ``~`` sorts before
everything (even the end of the string), then the end, then letters, then all other characters;
digit runs compare as integers. The key below encodes exactly that as strings whose plain ordering
reproduces dpkg's (checked against ``dpkg`` itself in the tests).
"""

from __future__ import annotations

import re

from garrison.vulndb.versions.base import InvalidVersion, KeyScheme, clean, split_epoch_release

_RUN = re.compile(r"(\D*)(\d*)")
_VALID = re.compile(r"^[A-Za-z0-9.+~:-]+$")


def _char_weight(c: str) -> int:
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


#: The key of a non-digit run is the run translated to characters that order like dpkg's weights
#: (``~`` lowest, then letters, then everything else) followed by ``\x02``, dpkg's "end of the run",
#: which sorts after ``~`` and before anything else. Valid versions hold only these characters.
_TEXT = str.maketrans(
    {
        c: chr(1) if c == "~" else c if c.isalpha() else chr(_char_weight(c) - 256 + 128)
        for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.+~:-"
    }
)

#: An exhausted string compares as an empty non-digit run and the number 0.
_END = "\x02\x00"
#: Appended after the final end marker: an exhausted string goes on comparing as end markers forever,
#: so it must sort after a continuation that starts with ``~`` (``\x01`` + a run character, all below
#: ``\xff``) and before any other continuation (``\x02``, letters, symbols). Without it ``0`` (whose only
#: pair *is* the end marker) would sort before ``0~1``.
_TERMINATOR = "\x01\xff"


def _part_key(part: str) -> str:
    """Key of an upstream version or a revision: a string whose plain ordering is dpkg's.

    Each (non-digit run, digit run) pair becomes the translated run, ``\x02``, then the number as its
    length (one character) and its digits without leading zeros, so longer numbers sort after shorter
    ones and equal lengths compare digit by digit. Every piece is self-delimiting, so comparing two keys
    character by character compares the runs in order, as dpkg does. Trailing pairs equal to the end
    marker are dropped and one end marker is appended, so ``1.0`` and ``1.0-0``'s empty and ``0``
    revisions compare equal. This is the matcher's hot loop (the key of every fixed version of every
    advisory a package has): a string key is built and compared several times faster than nested tuples.
    """
    runs = [
        f"{text.translate(_TEXT)}\x02{chr(len(n := digits.lstrip('0')))}{n}"
        for text, digits in _RUN.findall(part)
        if text or digits
    ]
    while runs and runs[-1] == _END:
        runs.pop()
    runs.append(_END)
    runs.append(_TERMINATOR)
    return "".join(runs)


def parse(version: str) -> tuple[int, str, str]:
    """Split into (epoch, upstream, revision); raises :class:`InvalidVersion`."""
    v = clean(version)
    if not _VALID.match(v):
        raise InvalidVersion(f"invalid dpkg version {version!r}")
    return split_epoch_release(v, "dpkg", version, "upstream version")


def key(version: str) -> tuple[int, str, str]:
    epoch, upstream, revision = parse(version)
    return (epoch, _part_key(upstream), _part_key(revision))


SCHEME = KeyScheme("dpkg", key)
