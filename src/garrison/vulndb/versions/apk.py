"""Alpine package versions, ordered like apk-tools.

Format: ``digits(.digits)*[letter](_suffix[number])*[~hash][-rN]``. Pre-release suffixes
(``_alpha`` < ``_beta`` < ``_pre`` < ``_rc``) sort before the bare version; post-release ones
(``_cvs`` < ``_svn`` < ``_git`` < ``_hg`` < ``_p``) after it; ``-rN`` is the package revision.
When components run out, apk-tools ranks "more numeric components" above "a letter" above "the
end"; the tuple layout below (numbers, letter, suffixes, revision) gives the same order.
"""

from __future__ import annotations

import re

from garrison.vulndb.versions.base import InvalidVersion, KeyScheme, clean

_VERSION = re.compile(
    r"^(?P<nums>\d+(?:\.\d+)*)(?:(?P<letter>[a-z])(?P<letternum>\d+)?)?(?P<suffixes>(?:_[a-z]+\d*)*)"
    r"(?:~[0-9a-f]+)?(?:-r(?P<rev>\d+))?$"
)
_SUFFIX = re.compile(r"_([a-z]+)(\d*)")

#: Suffix ranks; 4 is "no more suffixes", so pre-releases sort below and post-releases above it.
_SUFFIX_RANK = {"alpha": 0, "beta": 1, "pre": 2, "rc": 3, "cvs": 5, "svn": 6, "git": 7, "hg": 8, "p": 9}
_NO_SUFFIX = (4, 0)


def key(version: str) -> tuple[object, ...]:
    v = clean(version)
    m = _VERSION.match(v)
    if not m:
        raise InvalidVersion(f"invalid apk version {version!r}")
    nums = tuple(int(n) for n in m.group("nums").split("."))
    # Old packages such as openssh "6.6.4p1" put digits after the letter; apk-tools orders them
    # after the bare letter, which (letter, number) reproduces.
    letter = (ord(m.group("letter")), int(m.group("letternum") or 0)) if m.group("letter") else (0, 0)
    suffixes: list[tuple[int, int]] = []
    for name, num in _SUFFIX.findall(m.group("suffixes")):
        if name not in _SUFFIX_RANK:
            raise InvalidVersion(f"unknown suffix _{name} in apk version {version!r}")
        suffixes.append((_SUFFIX_RANK[name], int(num) if num else 0))
    suffixes.append(_NO_SUFFIX)
    rev = int(m.group("rev")) if m.group("rev") else 0
    return (nums, letter, tuple(suffixes), rev)


SCHEME = KeyScheme("apk", key)
