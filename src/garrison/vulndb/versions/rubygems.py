"""RubyGems versions, ordered like ``Gem::Version#<=>``.

A version is a list of numeric and string segments (``-`` reads as ``.pre.``); any string
segment makes it a pre-release, and a string segment sorts before any number. Trailing zeros of
the release part and of the pre-release part are dropped before comparing, and a missing
segment counts as 0.
"""

from __future__ import annotations

import re

from garrison.vulndb.versions.base import CmpScheme, InvalidVersion

_VALID = re.compile(r"^\s*([0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?\s*$")
_SEGMENT = re.compile(r"[0-9]+|[a-z]+", re.IGNORECASE)

Segment = int | str


def _drop_trailing_zeros(segments: list[Segment]) -> list[Segment]:
    while segments and segments[-1] == 0:
        segments.pop()
    return segments


def parse(version: str) -> list[Segment]:
    if not _VALID.match(version):
        raise InvalidVersion(f"invalid RubyGems version {version!r}")
    v = version.strip() or "0"
    v = v.replace("-", ".pre.")
    segments: list[Segment] = [int(s) if s.isdigit() else s for s in _SEGMENT.findall(v)]
    first_string = next((i for i, s in enumerate(segments) if isinstance(s, str)), len(segments))
    release = _drop_trailing_zeros(segments[:first_string])
    pre = _drop_trailing_zeros(segments[first_string:])
    return release + pre


def compare(a: list[Segment], b: list[Segment]) -> int:
    for i in range(max(len(a), len(b))):
        left = a[i] if i < len(a) else 0
        right = b[i] if i < len(b) else 0
        if left == right:
            continue
        if isinstance(left, str) and isinstance(right, int):
            return -1
        if isinstance(left, int) and isinstance(right, str):
            return 1
        return (left > right) - (left < right)  # type: ignore[operator]
    return 0


SCHEME = CmpScheme("rubygems", parse, compare)
