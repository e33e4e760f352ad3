"""Semantic Versioning 2.0.0 (npm, crates.io and others).

Build metadata is ignored; a release sorts after its pre-releases; pre-release identifiers
compare numerically when numeric, which sort below alphanumeric ones, and a longer identifier
list wins when one is a prefix of the other. A leading ``v`` or ``=`` is tolerated (npm does), and
missing minor/patch numbers count as 0 (OSV uses the bare ``0`` as "introduced at the start").
"""

from __future__ import annotations

import re

from garrison.vulndb.versions.base import InvalidVersion, KeyScheme, clean

_SEMVER = re.compile(
    r"^[v=]*\s*(?P<major>\d+)(?:\.(?P<minor>\d+))?(?:\.(?P<patch>\d+))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+(?P<build>[0-9A-Za-z.-]+))?$"
)

PreKey = tuple[tuple[int, int | str], ...]


def prerelease_key(pre: str | None, casefold: bool = False) -> tuple[int, PreKey]:
    """(1, ()) for a release; (0, identifiers) for a pre-release, so releases sort last."""
    if pre is None:
        return (1, ())
    ids: list[tuple[int, int | str]] = []
    for ident in pre.split("."):
        if ident.isdigit():
            ids.append((0, int(ident)))
        else:
            ids.append((1, ident.lower() if casefold else ident))
    return (0, tuple(ids))


def key(version: str) -> tuple[int, int, int, tuple[int, PreKey]]:
    m = _SEMVER.match(clean(version))
    if not m:
        raise InvalidVersion(f"invalid semantic version {version!r}")
    return (
        int(m.group("major")),
        int(m.group("minor") or 0),
        int(m.group("patch") or 0),
        prerelease_key(m.group("pre")),
    )


SCHEME = KeyScheme("semver", key)
