"""Package URL building, in one place so every analyzer spells purls the same way.

Analyzers see one file at a time and so cannot know the distribution of an OS package; they build
OS purls with a default namespace and no ``distro`` qualifier. Once the OS is known the applier calls
:func:`with_os` to rebuild them (``pkg:deb/debian/bash@5.2?arch=amd64`` →
``pkg:deb/ubuntu/bash@5.2?arch=amd64&distro=ubuntu-22.04``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import quote

from garrison.model import OSInfo, Package, PackageType
from garrison.model.ecosystem import ECOSYSTEMS, pep503

#: The purl namespace of an OS package when the distribution is not yet known.
DEFAULT_OS_NAMESPACE = {t: e.default_namespace for t, e in ECOSYSTEMS.items() if e.is_os}

#: os-release ``ID`` values whose purl namespace differs from the id (purl-spec uses vendor names).
_RPM_NAMESPACES = {"rhel": "redhat", "ol": "oracle", "amzn": "amazon", "opensuse-leap": "opensuse"}


# Strings whose percent-encoding is at most "+" → "%2B" (":" is left alone by purl's quoting).
_PLAIN = re.compile(r"[A-Za-z0-9._~:+-]*")
# Names and namespace segments no purl type rewrites (some types lower-case or re-separate them).
_PLAIN_NAME = re.compile(r"[a-z0-9._-]+")
# deb and rpm names may also hold "+" (``libstdc++6``), which packageurl spells "%2B" for these types
# (apk, npm, pypi and composer lower-case the escape too, so they keep the reference path).
_PLAIN_NAME_PLUS = re.compile(r"[a-z0-9._+-]+")
_PLUS_NAME_TYPES = frozenset(("deb", "rpm"))


def _build(
    type_: str,
    name: str,
    version: str,
    namespace: str | None = None,
    qualifiers: dict[str, str] | None = None,
) -> str:
    """Spell a purl. Plain components (the vast majority: dpkg status parsing builds hundreds per file)
    are joined directly; anything else goes through ``packageurl`` so its type-specific normalization and
    percent-encoding apply. ``tests/inventory/test_inv_registry_purl.py`` checks that both paths agree."""
    quals = {k: v for k, v in (qualifiers or {}).items() if v}
    if (
        (_PLAIN_NAME.fullmatch(name) or (type_ in _PLUS_NAME_TYPES and _PLAIN_NAME_PLUS.fullmatch(name)))
        and _PLAIN.fullmatch(version)
        and (not namespace or all(_PLAIN_NAME.fullmatch(seg) for seg in namespace.split("/")))
        and all(_PLAIN.fullmatch(v) for v in quals.values())
        and (type_ != "pypi" or "_" not in name)
    ):
        if "+" in name:
            name = name.replace("+", "%2B")
        out = f"pkg:{type_}/{namespace}/{name}" if namespace else f"pkg:{type_}/{name}"
        if version:
            out += "@" + version.replace("+", "%2B")
        if quals:
            out += "?" + "&".join(f"{k}={quals[k].replace('+', '%2B')}" for k in sorted(quals))
        return out
    return slow_build(type_, name, version, namespace, quals)


def slow_build(
    type_: str,
    name: str,
    version: str,
    namespace: str | None = None,
    qualifiers: dict[str, str] | None = None,
) -> str:
    """The reference spelling, by ``packageurl-python``; names it rejects (``/``, empty after
    normalization) get a plain percent-encoded spelling instead, since analyzers must never raise."""
    from packageurl import PackageURL  # lazy: only the rare names the fast path cannot spell

    quals = {k: v for k, v in (qualifiers or {}).items() if v}
    try:
        return str(
            PackageURL(
                type=type_,
                namespace=namespace or None,
                name=name,
                version=version or None,
                qualifiers=quals or None,
            ).to_string()
        )
    except (ValueError, TypeError):
        out = f"pkg:{type_}/"
        if namespace:
            out += "/".join(quote(seg, safe="") for seg in namespace.split("/")) + "/"
        out += quote(name, safe="") or "unknown"
        if version:
            out += "@" + quote(version, safe=":")
        if quals:
            out += "?" + "&".join(f"{k}={quote(quals[k], safe=':')}" for k in sorted(quals))
        return out


def deb(name: str, version: str, arch: str = "", namespace: str = "debian", distro: str = "") -> str:
    return _build("deb", name, version, namespace, {"arch": arch, "distro": distro})


def apk(name: str, version: str, arch: str = "", namespace: str = "alpine", distro: str = "") -> str:
    return _build("apk", name, version, namespace, {"arch": arch, "distro": distro})


def rpm(
    name: str,
    version: str,
    arch: str = "",
    epoch: int | None = None,
    namespace: str = "redhat",
    distro: str = "",
) -> str:
    """``version`` is ``VERSION-RELEASE``; the epoch goes into a qualifier, as purl-spec says."""
    quals = {"arch": arch, "epoch": str(epoch) if epoch else "", "distro": distro}
    return _build("rpm", name, version, namespace, quals)


def pypi(name: str, version: str) -> str:
    return _build("pypi", pep503(name), version)


def npm(name: str, version: str) -> str:
    """``name`` may be scoped (``@babel/core``): the scope becomes the (percent-encoded) namespace."""
    if name.startswith("@") and "/" in name:
        scope, _, base = name.partition("/")
        return _build("npm", base, version, scope)
    return _build("npm", name, version)


def golang(module: str, version: str) -> str:
    """``github.com/a/b`` → namespace ``github.com/a``, name ``b``."""
    namespace, _, name = module.rpartition("/")
    return _build("golang", name, version, namespace or None)


def maven(group: str, artifact: str, version: str) -> str:
    return _build("maven", artifact, version, group or None)


def gem(name: str, version: str) -> str:
    return _build("gem", name, version)


def cargo(name: str, version: str) -> str:
    return _build("cargo", name, version)


def nuget(name: str, version: str) -> str:
    return _build("nuget", name, version)


def composer(name: str, version: str) -> str:
    """Composer names are ``vendor/package``: the vendor is the namespace."""
    vendor, _, base = name.rpartition("/")
    return _build("composer", base, version, vendor or None)


def os_namespace(os_info: OSInfo, pkg_type: PackageType) -> str:
    """The purl namespace for an OS package on this OS (``debian``, ``ubuntu``, ``alpine``, ``redhat``…)."""
    family = os_info.family or DEFAULT_OS_NAMESPACE.get(pkg_type, "")
    if pkg_type is PackageType.RPM:
        return _RPM_NAMESPACES.get(family, family)
    return family


def os_distro(os_info: OSInfo) -> str:
    """The ``distro`` qualifier: ``debian-12``, ``alpine-3.19.1``, ``ubuntu-22.04``."""
    if not os_info.family:
        return ""
    return f"{os_info.family}-{os_info.version_id}" if os_info.version_id else os_info.family


def for_package(pkg: Package, os_info: OSInfo | None = None) -> str:
    """The purl of an OS package, with namespace and ``distro`` from ``os_info`` when given."""
    ns = os_namespace(os_info, pkg.type) if os_info else DEFAULT_OS_NAMESPACE.get(pkg.type, "")
    distro = os_distro(os_info) if os_info else ""
    if pkg.type is PackageType.DEB:
        return deb(pkg.name, pkg.version, pkg.arch, ns, distro)
    if pkg.type is PackageType.APK:
        return apk(pkg.name, pkg.version, pkg.arch, ns, distro)
    if pkg.type is PackageType.RPM:
        return rpm(pkg.name, pkg.version, pkg.arch, pkg.epoch, ns, distro)
    return pkg.purl


def with_os(pkg: Package, os_info: OSInfo | None) -> Package:
    """Rebuild an OS package's purl for the detected OS; language packages are returned unchanged."""
    if not pkg.type.is_os or os_info is None:
        return pkg
    return replace(pkg, purl=for_package(pkg, os_info))
