"""Which OSV ecosystem, package name and version to look up for an installed package.

OS packages depend on the detected release: Debian advisories are keyed by the *source* package and
compared with the *source* version (a binNMU ``1.2-3+b1`` built from source ``1.2-3`` is still vulnerable
to a fix in ``1.2-3+deb12u1``); Alpine's by the apk *origin*. Language packages map through their row of
:data:`garrison.model.ecosystem.ECOSYSTEMS`. Releases we hold no data for produce a warning, never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from garrison.model import OSInfo, Package, PackageType

#: A Debian binary-only rebuild suffix (``+b1``); the source version is the binary version without it.
_BINNMU = re.compile(r"\+b\d+$")


@dataclass(frozen=True, slots=True)
class Lookup:
    """What to ask the advisory database for one package."""

    ecosystem: str
    name: str
    version: str


@dataclass(frozen=True, slots=True)
class OSTarget:
    """How OS packages of one detected release are looked up; ``ecosystem`` is "" when we hold no data."""

    ecosystem: str
    family: str
    #: Why there is no data (shown as a warning), "" when there is.
    reason: str = ""


def _major(version_id: str) -> str:
    return version_id.split(".", 1)[0]


def _major_minor(version_id: str) -> str:
    return ".".join(version_id.split(".")[:2])


def os_target(os: OSInfo | None) -> OSTarget:
    """The OSV ecosystem for the OS packages of a release (``Debian:12``, ``Alpine:v3.19``)."""
    if os is None:
        return OSTarget("", "", "no operating system detected: OS packages were not checked")
    family = os.family.lower()
    label = f"{family} {os.version_id}".strip()
    if family == "debian":
        major = _major(os.version_id)
        if not major.isdigit():
            reason = f"{label}: no advisory data for Debian testing/unstable; OS packages not checked"
            return OSTarget("", family, reason)
        return OSTarget(f"Debian:{major}", family)
    if family == "alpine":
        mm = _major_minor(os.version_id)
        if not re.fullmatch(r"\d+\.\d+", mm):
            return OSTarget("", family, f"{label}: no advisory data for Alpine edge; OS packages not checked")
        return OSTarget(f"Alpine:v{mm}", family)
    return OSTarget("", family, f"{label}: no advisory data for this distribution; OS packages not checked")


def debian_source_version(pkg: Package) -> str:
    """The source version of a Debian binary: ``source_version`` when the analyzer found one, else the
    binary version without a binNMU ``+bN`` suffix (those never appear in advisories)."""
    if pkg.source_version:
        return pkg.source_version
    return _BINNMU.sub("", pkg.version)


def _language_name(pkg: Package) -> str:
    if pkg.type is PackageType.JAVA and pkg.namespace and ":" not in pkg.name:
        return f"{pkg.namespace}:{pkg.name}"
    return pkg.name


def _language_version(pkg: Package) -> str:
    # Go module versions carry a "v" prefix; OSV's Go records use bare semver.
    if pkg.type is PackageType.GO and pkg.version.startswith("v"):
        return pkg.version[1:]
    return pkg.version


def lookup_for(pkg: Package, target: OSTarget) -> Lookup | None:
    """The lookup key for ``pkg``, or None when there is no advisory data for it."""
    if pkg.type.is_os:
        if not target.ecosystem:
            return None
        if pkg.type is PackageType.DEB and target.family == "debian":
            return Lookup(target.ecosystem, pkg.source_name or pkg.name, debian_source_version(pkg))
        if pkg.type is PackageType.APK and target.family == "alpine":
            return Lookup(target.ecosystem, pkg.source_name or pkg.name, pkg.version)
        return None
    eco = pkg.type.osv_ecosystem
    if not eco or not pkg.version:
        return None
    return Lookup(eco, _language_name(pkg), _language_version(pkg))
