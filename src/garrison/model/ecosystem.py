"""The one table of ecosystems: everything garrison knows about a kind of package, in one row.

A package type is its purl type (``pypi``, ``golang``, ``maven``…). Its row says which OSV ecosystem
holds its advisories, which version scheme orders its versions (a name that
:func:`garrison.vulndb.versions.scheme_for` resolves), how its registry spells one package's name (so that
``Django`` and ``django`` find the same advisories and designate the same purl), and what the mirror must
carry. Every stage derives its lookups from here; a new ecosystem is one :class:`PackageType` member and one
:data:`ECOSYSTEMS` row (a missing or duplicate row fails at import).

OS package types are keyed by distribution rather than by one ecosystem: ``Debian:12`` advisories are
picked by the detected release, so their row lists the OSV ecosystems of the distributions that use them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class PackageType(StrEnum):
    """The packaging format a package was found in; each value is its purl type."""

    DEB = "deb"
    APK = "apk"
    RPM = "rpm"
    PYTHON = "pypi"
    NPM = "npm"
    GO = "golang"
    JAVA = "maven"
    GEM = "gem"
    CARGO = "cargo"
    NUGET = "nuget"
    COMPOSER = "composer"

    @property
    def ecosystem(self) -> Ecosystem:
        """This type's row of :data:`ECOSYSTEMS`."""
        return ECOSYSTEMS[self]

    @property
    def is_os(self) -> bool:
        """OS packages are matched against the distribution's advisories, keyed by the detected release."""
        return ECOSYSTEMS[self].is_os

    @property
    def osv_ecosystem(self) -> str:
        """The OSV ecosystem name for language packages ("" for OS packages: those depend on the release)."""
        return ECOSYSTEMS[self].osv


_PEP503 = re.compile(r"[-_.]+")


def pep503(name: str) -> str:
    """PEP 503 normalization, the form PyPI, OSV and purls use: case-insensitive, and runs of ``-``, ``_``
    and ``.`` are one ``-`` (``Foo_Bar.baz`` → ``foo-bar-baz``)."""
    return _PEP503.sub("-", name).lower()


def _crate(name: str) -> str:
    """crates.io: case-insensitive, and ``-`` / ``_`` are the same crate."""
    return name.lower().replace("_", "-")


def _lower(name: str) -> str:
    return name.lower()


def _exact(name: str) -> str:
    return name


@dataclass(frozen=True, slots=True)
class Ecosystem:
    """One row of :data:`ECOSYSTEMS`."""

    #: The package type (its value is the purl type).
    type: PackageType
    #: The OSV ecosystem of language packages; "" for OS packages (see ``distributions``).
    osv: str
    #: Name of the version scheme (``dpkg``, ``pep440``…) in :mod:`garrison.vulndb.versions`.
    scheme: str
    #: The registry's identity of a name: two spellings with the same result are one package.
    normalize: Callable[[str], str]
    #: OS types only: the OSV ecosystems (the part before ``:``) of distributions whose packages have this
    #: type and whose records use ``scheme``.
    distributions: tuple[str, ...] = ()
    #: OSV ecosystems fetched from the mirror by default (a language type's is its own ``osv``).
    mirror: tuple[str, ...] = ()
    #: Whether a mirror without ``mirror`` is still usable (the update warns instead of failing).
    mirror_optional: bool = False
    #: Whether the purl namespace is part of the name as users and OSV spell it (npm scope, Go module path,
    #: Composer vendor); Maven keeps the group apart, in :attr:`~garrison.model.Package.namespace`.
    namespace_in_name: bool = False
    #: OS types only: the purl namespace before the distribution is known.
    default_namespace: str = ""

    @property
    def is_os(self) -> bool:
        return bool(self.distributions)


ECOSYSTEMS: dict[PackageType, Ecosystem] = {
    e.type: e
    for e in (
        Ecosystem(PackageType.DEB, "", "dpkg", _lower, ("Debian", "Ubuntu"), ("Debian",), default_namespace="debian"),
        Ecosystem(
            PackageType.APK,
            "",
            "apk",
            _lower,
            ("Alpine", "Wolfi", "Chainguard", "Alpaquita"),
            ("Alpine",),
            default_namespace="alpine",
        ),
        Ecosystem(
            PackageType.RPM,
            "",
            "rpm",
            _exact,  # rpm names are case-sensitive (NetworkManager, perl-Digest-SHA)
            (
                "Red Hat",
                "Rocky Linux",
                "AlmaLinux",
                "openSUSE",
                "SUSE",
                "Mageia",
                "Photon OS",
                "Azure Linux",
                "openEuler",
                "rpm",
            ),
            default_namespace="redhat",
        ),
        Ecosystem(PackageType.GO, "Go", "go", _exact, mirror=("Go",), namespace_in_name=True),
        Ecosystem(PackageType.CARGO, "crates.io", "semver", _crate, mirror=("crates.io",)),
        Ecosystem(PackageType.PYTHON, "PyPI", "pep440", pep503, mirror=("PyPI",)),
        Ecosystem(PackageType.GEM, "RubyGems", "rubygems", _exact, mirror=("RubyGems",)),
        # Composer and NuGet names are case-insensitive; new npm names must be lower-case and old
        # mixed-case ones are unique case-insensitively.
        Ecosystem(PackageType.COMPOSER, "Packagist", "composer", _lower, mirror=("Packagist",), namespace_in_name=True),
        Ecosystem(PackageType.NPM, "npm", "semver", _lower, mirror=("npm",), namespace_in_name=True),
        # Maven group:artifact ids are case-sensitive.
        Ecosystem(PackageType.JAVA, "Maven", "maven", _exact, mirror=("Maven",), mirror_optional=True),
        Ecosystem(PackageType.NUGET, "NuGet", "nuget", _lower, mirror=("NuGet",), mirror_optional=True),
    )
}
if set(ECOSYSTEMS) != set(PackageType):  # pragma: no cover - a new type without its row
    raise ImportError(f"ECOSYSTEMS lacks a row for {sorted(set(PackageType) - set(ECOSYSTEMS))}")

#: OSV ecosystems no package type of ours produces, whose versions are still ordered by a known scheme.
OTHER_OSV_SCHEMES: dict[str, str] = {"Hex": "semver", "Pub": "semver", "SwiftURL": "semver"}

#: OSV ecosystem (the part before ``:``) → its row, for every ecosystem a row names.
_BY_OSV: dict[str, Ecosystem] = {
    osv: e for e in ECOSYSTEMS.values() for osv in ((e.osv,) if e.osv else ()) + e.distributions
}


def for_osv(ecosystem: str) -> Ecosystem | None:
    """The row whose packages ``ecosystem`` (``Debian:12``, ``PyPI``…) holds advisories for, if any."""
    return _BY_OSV.get(ecosystem.split(":", 1)[0].strip())


def scheme_name(ecosystem: str) -> str:
    """The version scheme of an OSV ecosystem (``Debian:12`` → ``dpkg``); ``generic`` when unknown."""
    row = for_osv(ecosystem)
    if row is not None:
        return row.scheme
    return OTHER_OSV_SCHEMES.get(ecosystem.split(":", 1)[0].strip(), "generic")


def normalize_name(ecosystem: str, name: str) -> str:
    """The lookup form of ``name`` in the OSV ``ecosystem``, applied both when the advisory database is built
    and when it is queried; unknown ecosystems keep names as they are."""
    row = for_osv(ecosystem)
    return row.normalize(name.strip()) if row is not None else name.strip()


def from_purl_type(purl_type: str) -> PackageType | None:
    """The package type of a purl type (``pypi`` → :attr:`PackageType.PYTHON`); None when we have none."""
    try:
        return PackageType(purl_type.lower())
    except ValueError:
        return None


def mirror_ecosystems() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(required, optional) OSV ecosystems a mirror is fetched for by default."""
    required = tuple(o for e in ECOSYSTEMS.values() if not e.mirror_optional for o in e.mirror)
    optional = tuple(o for e in ECOSYSTEMS.values() if e.mirror_optional for o in e.mirror)
    return required, optional
