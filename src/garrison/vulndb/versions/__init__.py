"""Version schemes, one module each, and the one table that maps OSV ecosystems to them.

``scheme_for("Debian:12")`` returns the dpkg scheme; the part after ``:`` (the release) never
matters for ordering. Unknown ecosystems get a generic natural ordering rather than an error,
so a new ecosystem in the mirror degrades gracefully.
"""

from __future__ import annotations

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

#: OSV ecosystem (the part before ``:``) → scheme name.
ECOSYSTEM_SCHEMES: dict[str, str] = {
    "Debian": "dpkg",
    "Ubuntu": "dpkg",
    "Alpine": "apk",
    "Wolfi": "apk",
    "Chainguard": "apk",
    "Alpaquita": "apk",
    "Red Hat": "rpm",
    "Rocky Linux": "rpm",
    "AlmaLinux": "rpm",
    "openSUSE": "rpm",
    "SUSE": "rpm",
    "Mageia": "rpm",
    "Photon OS": "rpm",
    "Azure Linux": "rpm",
    "openEuler": "rpm",
    "rpm": "rpm",
    "PyPI": "pep440",
    "npm": "semver",
    "crates.io": "semver",
    "Hex": "semver",
    "Pub": "semver",
    "SwiftURL": "semver",
    "Go": "go",
    "Maven": "maven",
    "RubyGems": "rubygems",
    "NuGet": "nuget",
    "Packagist": "composer",
}


def scheme_for(ecosystem: str) -> VersionScheme:
    """The scheme that orders versions of ``ecosystem`` (``Debian:12``, ``PyPI``…)."""
    base = ecosystem.split(":", 1)[0].strip()
    return SCHEMES[ECOSYSTEM_SCHEMES.get(base, "generic")]


__all__ = ["ECOSYSTEM_SCHEMES", "SCHEMES", "InvalidVersion", "VersionScheme", "scheme_for"]
