"""OS detection from release files.

Each file is parsed on its own (the walker hands over one file at a time), so one image can yield
several :class:`OSInfo` values — ``etc/os-release`` says ``12`` and ``etc/debian_version`` says
``12.5``. :func:`merge` combines them with a fixed priority: ``os-release`` is authoritative for the
family and version, the distribution-specific files only fill gaps (Debian testing has no
``VERSION_ID``; old CentOS has no ``os-release`` at all).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import ClassVar

from garrison.inventory.base import EMPTY, AnalysisResult, FileInput
from garrison.model import OSInfo

#: Files read, in merge priority order (first wins for each field).
RELEASE_FILES = (
    "etc/os-release",
    "usr/lib/os-release",
    "etc/lsb-release",
    "etc/alpine-release",
    "etc/redhat-release",
    "etc/centos-release",
    "etc/debian_version",
)
_WANTED = frozenset(RELEASE_FILES)

DEBIAN_CODENAMES = {
    "7": "wheezy",
    "8": "jessie",
    "9": "stretch",
    "10": "buster",
    "11": "bullseye",
    "12": "bookworm",
    "13": "trixie",
    "14": "forky",
}

#: ``<name> release <version> (<codename>)`` prefixes of redhat-release → os-release ``ID``.
_REDHAT_FAMILIES = (
    ("red hat enterprise linux", "rhel"),
    ("centos stream", "centos"),
    ("centos", "centos"),
    ("rocky", "rocky"),
    ("almalinux", "almalinux"),
    ("fedora", "fedora"),
    ("oracle linux", "ol"),
    ("amazon linux", "amzn"),
)
_REDHAT_RE = re.compile(r"release\s+([0-9][0-9.]*)\s*(?:\(([^)]*)\))?", re.IGNORECASE)


def parse_key_values(text: str) -> dict[str, str]:
    """Shell-style ``KEY=value`` lines (os-release, lsb-release); quotes stripped, comments skipped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[key.strip()] = value
    return out


def _from_os_release(text: str) -> OSInfo | None:
    kv = parse_key_values(text)
    family = kv.get("ID", "").lower()
    if not family:
        return None
    version = kv.get("VERSION_ID", "")
    codename = kv.get("VERSION_CODENAME", "") or kv.get("UBUNTU_CODENAME", "")
    if not codename and family == "debian":
        codename = DEBIAN_CODENAMES.get(version.split(".")[0], "")
        if not codename:
            # Debian testing/sid: "VERSION="... (trixie)"" without VERSION_CODENAME in old images.
            m = re.search(r"\(([a-z]+)\)", kv.get("VERSION", ""))
            codename = m.group(1) if m else ""
    pretty = kv.get("PRETTY_NAME", "")
    # gcr.io/distroless writes PRETTY_NAME="Distroless" on top of ID=debian.
    distroless = "distroless" in pretty.lower()
    return OSInfo(family=family, version_id=version, codename=codename, pretty_name=pretty, distroless=distroless)


def _from_lsb_release(text: str) -> OSInfo | None:
    kv = parse_key_values(text)
    family = kv.get("DISTRIB_ID", "").lower()
    if not family:
        return None
    return OSInfo(
        family=family,
        version_id=kv.get("DISTRIB_RELEASE", ""),
        codename=kv.get("DISTRIB_CODENAME", ""),
        pretty_name=kv.get("DISTRIB_DESCRIPTION", ""),
    )


def _from_alpine_release(text: str) -> OSInfo | None:
    version = text.strip().splitlines()[0].strip() if text.strip() else ""
    return OSInfo(family="alpine", version_id=version) if version else None


def _from_redhat_release(text: str) -> OSInfo | None:
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    low = line.lower()
    family = next((fam for prefix, fam in _REDHAT_FAMILIES if low.startswith(prefix)), "")
    if not family:
        return None
    m = _REDHAT_RE.search(line)
    version = m.group(1) if m else ""
    codename = (m.group(2) or "") if m else ""
    return OSInfo(family=family, version_id=version, codename=codename, pretty_name=line)


def _from_debian_version(text: str) -> OSInfo | None:
    """``12.5`` → bookworm; ``trixie/sid`` → testing, version unknown."""
    value = text.strip()
    if not value:
        return None
    if value[0].isdigit():
        return OSInfo(family="debian", version_id=value, codename=DEBIAN_CODENAMES.get(value.split(".")[0], ""))
    codename = value.split("/")[0]
    return OSInfo(family="debian", codename=codename if codename.isalpha() else "")


_PARSERS = {
    "etc/os-release": _from_os_release,
    "usr/lib/os-release": _from_os_release,
    "etc/lsb-release": _from_lsb_release,
    "etc/alpine-release": _from_alpine_release,
    "etc/redhat-release": _from_redhat_release,
    "etc/centos-release": _from_redhat_release,
    "etc/debian_version": _from_debian_version,
}


def parse_release_file(path: str, content: bytes) -> OSInfo | None:
    """The OS one release file describes, or None when it says nothing usable."""
    parser = _PARSERS.get(path)
    if parser is None:
        return None
    return parser(content.decode("utf-8", "replace"))


def merge(found: Mapping[str, OSInfo]) -> OSInfo | None:
    """Combine the OS seen in several release files (keyed by path) into one.

    The highest-priority file fixes the family; lower-priority files of the *same* family only fill empty
    fields (so a leftover ``debian_version`` in an Ubuntu image cannot turn it into Debian). The Debian
    version from ``os-release`` (``12``) is kept over ``debian_version`` (``12.5``): advisories are keyed
    by the major release.
    """
    ordered = [found[p] for p in RELEASE_FILES if p in found]
    if not ordered:
        return None
    best = ordered[0]
    for other in ordered[1:]:
        if other.family != best.family:
            continue
        best = replace(
            best,
            version_id=best.version_id or other.version_id,
            codename=best.codename or other.codename,
            pretty_name=best.pretty_name or other.pretty_name,
        )
    return best


@dataclass(frozen=True, slots=True)
class ReleaseAnalyzer:
    """Reads the release files listed in :data:`RELEASE_FILES`."""

    name: str = "os-release"
    version: int = 1
    max_bytes: int = 64 * 1024
    #: Dispatch hint (see :mod:`garrison.inventory.base`).
    paths: ClassVar[frozenset[str]] = _WANTED

    def wants(self, path: str, size: int, mode: int) -> bool:
        return path in _WANTED

    def analyze(self, file: FileInput) -> AnalysisResult:
        info = parse_release_file(file.path, file.content)
        return AnalysisResult(os=info) if info else EMPTY
