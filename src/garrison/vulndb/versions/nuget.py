"""NuGet versions: SemVer 2.0 with an optional fourth (revision) number.

Missing parts count as 0 (``1.0`` = ``1.0.0.0``); pre-release labels compare case-insensitively
(NuGet treats ``1.0.0-Beta`` and ``1.0.0-beta`` as the same version); metadata is ignored.
"""

from __future__ import annotations

import re

from garrison.vulndb.versions.base import InvalidVersion, KeyScheme, clean
from garrison.vulndb.versions.semver import prerelease_key

_NUGET = re.compile(
    r"^[vV]?(?P<nums>\d+(?:\.\d+){0,3})"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)


def key(version: str) -> tuple[object, ...]:
    m = _NUGET.match(clean(version))
    if not m:
        raise InvalidVersion(f"invalid NuGet version {version!r}")
    nums = [int(n) for n in m.group("nums").split(".")]
    nums += [0] * (4 - len(nums))
    return (*nums, prerelease_key(m.group("pre"), casefold=True))


SCHEME = KeyScheme("nuget", key)
