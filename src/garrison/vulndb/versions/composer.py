"""Composer (Packagist) versions, normalized the way Composer's ``VersionParser`` does.

``v`` prefixes are dropped, the numeric part is padded to four numbers, ``1.2.x-dev`` branches
become ``1.2.9999999.9999999-dev``, and stability suffixes are expanded (``a`` → alpha, ``b`` →
beta, ``p``/``pl`` → patch). Order: dev < alpha < beta < RC < stable < patch, then the suffix
number. Named branches (``dev-main``) have no order and raise :class:`InvalidVersion`.
"""

from __future__ import annotations

import re

from garrison.vulndb.versions.base import InvalidVersion, KeyScheme, clean

_BRANCH_MAX = 9999999
_VERSION = re.compile(
    r"^v?(?P<nums>\d+(?:\.(?:\d+|[x*]))*)[._-]?"
    r"(?:(?P<stab>stable|beta|b|rc|alpha|a|patch|pl|p)(?P<stabnum>(?:[.-]?\d+)*))?"
    r"(?P<dev>[.-]?dev)?$",
    re.IGNORECASE,
)
_STABILITY = {
    "dev": 0,
    "alpha": 1,
    "a": 1,
    "beta": 2,
    "b": 2,
    "rc": 3,
    "stable": 4,
    "patch": 5,
    "pl": 5,
    "p": 5,
}


def key(version: str) -> tuple[object, ...]:
    v = clean(version)
    m = _VERSION.match(v)
    if not m:
        raise InvalidVersion(f"invalid Composer version {version!r}")
    nums = [_BRANCH_MAX if n in ("x", "X", "*") else int(n) for n in m.group("nums").split(".")]
    if len(nums) > 4:
        raise InvalidVersion(f"invalid Composer version {version!r}: more than four numbers")
    nums += [0] * (4 - len(nums))
    stab = (m.group("stab") or "stable").lower()
    stab_nums = tuple(int(n) for n in re.findall(r"\d+", m.group("stabnum") or ""))
    rank = _STABILITY[stab]
    if m.group("dev"):
        # "1.0.0-beta1-dev" is a development snapshot of beta1: just before it.
        return (*nums, rank, stab_nums, 0) if m.group("stab") else (*nums, 0, (), 0)
    return (*nums, rank, stab_nums, 1)


SCHEME = KeyScheme("composer", key)
