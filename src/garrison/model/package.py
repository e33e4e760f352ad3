"""What is installed: operating system and packages."""

from __future__ import annotations

from dataclasses import dataclass

from garrison.model.ecosystem import PackageType

__all__ = ["OSInfo", "Package", "PackageType"]


@dataclass(frozen=True, slots=True)
class OSInfo:
    """The detected operating system of an image."""

    #: Lower-case family id from ``os-release`` ``ID`` (``debian``, ``alpine``, ``ubuntu``, ``rhel``…).
    family: str
    #: ``VERSION_ID`` (``12``, ``3.19.1``) or the release file's version.
    version_id: str = ""
    #: ``VERSION_CODENAME`` (``bookworm``) when known.
    codename: str = ""
    #: ``PRETTY_NAME`` from ``os-release`` (``Debian GNU/Linux 12 (bookworm)``).
    pretty_name: str = ""
    #: True for distroless images (``/etc/os-release`` but no package manager database).
    distroless: bool = False


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package. ``layer`` and ``locations`` say where it came from."""

    #: The name as the package manager spells it (for Maven, the artifact id; the group is ``namespace``).
    name: str
    #: The version as installed or declared (dpkg's full version with epoch and revision).
    version: str
    #: The packaging format; its value is the purl type.
    type: PackageType
    #: Package URL (https://github.com/package-url/purl-spec).
    purl: str = ""
    #: Files that declared the package (``var/lib/dpkg/status``, a METADATA file, a jar path…), no leading "/".
    locations: tuple[str, ...] = ()
    #: ``diff_id`` of the layer that introduced the package ("" when unknown, e.g. for ``dir:``).
    layer: str = ""
    #: Source package (dpkg ``Source:``, apk origin, rpm source rpm name); advisories are keyed by it.
    source_name: str = ""
    #: Source version (dpkg ``Source: name (version)``); equals ``version`` when the binary has none.
    source_version: str = ""
    #: Architecture the package was built for (``amd64``, ``all``, ``noarch``), "" when not recorded.
    arch: str = ""
    #: Declared licenses as written (SPDX ids or free text), in the package's order.
    licenses: tuple[str, ...] = ()
    #: Epoch for rpm, kept apart because rpm versions print without it.
    epoch: int | None = None
    #: Maven group id, npm scope etc. are part of ``name``; this holds e.g. the jar's ``groupId``.
    namespace: str = ""
    #: True for packages from lock files or manifests that only declare (``dir:`` mode), not installed ones.
    from_lockfile: bool = False

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The package's identity, used for de-duplication and layer attribution: type, namespace, the name
        as its registry identifies it (``Django`` is ``django``: :attr:`Ecosystem.normalize
        <garrison.model.ecosystem.Ecosystem.normalize>`) and version."""
        return (self.type.value, self.namespace, self.type.ecosystem.normalize(self.name), self.version)
