"""RPM versions (``[epoch:]version[-release]``), ordered like rpm's ``rpmvercmp``.

rpmvercmp splits a string into alphanumeric segments (other characters only separate them).
Numeric segments beat alphabetic ones, numbers compare as integers and letters with ``strcmp``;
``~`` sorts before everything including the end, ``^`` after the end but before any segment,
and when one string runs out the longer one is newer. Each of those outcomes is a token rank
below, so a plain tuple comparison reproduces rpmvercmp.
"""

from __future__ import annotations

import re

from garrison.vulndb.versions.base import KeyScheme, clean, split_epoch_release

_TOKEN = re.compile(r"~|\^|[0-9]+|[A-Za-z]+")

_TILDE, _END, _CARET, _ALPHA, _NUM = 0, 1, 2, 3, 4

Token = tuple[int, int | str]


def segments_key(text: str) -> tuple[Token, ...]:
    """The rpmvercmp key of one version or release string."""
    out: list[Token] = []
    for tok in _TOKEN.findall(text):
        if tok == "~":
            out.append((_TILDE, 0))
        elif tok == "^":
            out.append((_CARET, 0))
        elif tok.isdigit():
            out.append((_NUM, int(tok)))
        else:
            out.append((_ALPHA, tok))
    out.append((_END, 0))
    return tuple(out)


def parse(version: str) -> tuple[int, str, str]:
    """Split into (epoch, version, release); a missing release compares as an empty one."""
    return split_epoch_release(clean(version), "rpm", version)


def key(version: str) -> tuple[int, tuple[Token, ...], tuple[Token, ...]]:
    epoch, ver, rel = parse(version)
    return (epoch, segments_key(ver), segments_key(rel))


SCHEME = KeyScheme("rpm", key)
