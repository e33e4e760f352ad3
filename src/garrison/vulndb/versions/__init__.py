"""Version schemes, one module each, resolved by the name :data:`garrison.model.ecosystem.ECOSYSTEMS` gives.

``scheme_for("Debian:12")`` returns the dpkg scheme; the part after ``:`` (the release) never
matters for ordering. Unknown ecosystems get a generic natural ordering rather than an error,
so a new ecosystem in the mirror degrades gracefully.
"""

from __future__ import annotations

from garrison.model.ecosystem import scheme_name
from garrison.vulndb.versions import (
    apk,
    composer,
    dpkg,
    generic,
    go,
    maven,
    nuget,
    pep440,
    rpm,
    rubygems,
    semver,
)
from garrison.vulndb.versions.base import InvalidVersion, VersionScheme

#: Every scheme by name.
SCHEMES: dict[str, VersionScheme] = {
    s.name: s
    for s in (
        dpkg.SCHEME,
        rpm.SCHEME,
        apk.SCHEME,
        pep440.SCHEME,
        semver.SCHEME,
        go.SCHEME,
        maven.SCHEME,
        rubygems.SCHEME,
        nuget.SCHEME,
        composer.SCHEME,
        generic.SCHEME,
    )
}


def scheme_for(ecosystem: str) -> VersionScheme:
    """The scheme that orders versions of ``ecosystem`` (``Debian:12``, ``PyPI``…)."""
    return SCHEMES[scheme_name(ecosystem)]


__all__ = ["SCHEMES", "InvalidVersion", "VersionScheme", "scheme_for"]
